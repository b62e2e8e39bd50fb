/* Dashboard charts: reads the JSON embedded next to each canvas (json_script) and draws it
   with the vendored Chart.js. Net bars are solid when final and light hatched when provisional. */
(function () {
  "use strict";

  var COLORS = {
    inflow: "#2e7d32",
    outflow: "#c62828",
    final: "#1f4e79",
    provisional: "#f0a030"
  };

  function hatch(color) {
    var size = 8;
    var canvas = document.createElement("canvas");
    canvas.width = size;
    canvas.height = size;
    var ctx = canvas.getContext("2d");
    ctx.fillStyle = "rgba(240, 160, 48, 0.35)";
    ctx.fillRect(0, 0, size, size);
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(0, size);
    ctx.lineTo(size, 0);
    ctx.stroke();
    return ctx.createPattern(canvas, "repeat");
  }

  function draw(canvasId) {
    var canvas = document.getElementById(canvasId);
    var source = document.getElementById(canvasId + "-data");
    if (!canvas || !source || typeof Chart === "undefined") {
      return null;
    }
    var data = JSON.parse(source.textContent);
    var provisionalFill = hatch(COLORS.provisional);
    var netColors = data.status.map(function (s) { return s === "final" ? COLORS.final : provisionalFill; });
    var netBorders = data.status.map(function (s) { return s === "final" ? COLORS.final : COLORS.provisional; });
    var datasets = [];
    if (data.series.net) {
      datasets.push({
        type: "bar", label: "Net (Wh)", data: data.series.net, backgroundColor: netColors,
        borderColor: netBorders, borderWidth: 1, order: 2
      });
    }
    if (data.series.inflow) {
      datasets.push({
        type: "line", label: "Inflow (Wh)", data: data.series.inflow, borderColor: COLORS.inflow,
        backgroundColor: COLORS.inflow, pointRadius: 0, borderWidth: 1.5, stepped: "middle", order: 1
      });
    }
    if (data.series.outflow) {
      datasets.push({
        type: "line", label: "Outflow (Wh, drawn below zero)",
        data: data.series.outflow.map(function (v) { return -v; }), borderColor: COLORS.outflow,
        backgroundColor: COLORS.outflow, pointRadius: 0, borderWidth: 1.5, stepped: "middle", order: 1
      });
    }
    return new Chart(canvas, {
      data: { labels: data.labels, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { ticks: { autoSkip: true, maxTicksLimit: 14, maxRotation: 0 } },
          y: { title: { display: true, text: "Wh per quarter-hour" } }
        },
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              footer: function (items) {
                return items.length ? "status: " + data.status[items[0].dataIndex] + " · " + data.utc[items[0].dataIndex] : "";
              }
            }
          }
        }
      }
    });
  }

  function init() {
    ["balance-chart", "residual-chart"].forEach(draw);
    document.body.setAttribute("data-charts-ready", "1");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();

/* Forms that ask before they act (data-confirm): no inline handlers, so the CSP needs none. */
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});
