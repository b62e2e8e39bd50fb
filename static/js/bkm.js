/* Dashboard charts: reads the JSON embedded next to each canvas (json_script) and draws it
   with the vendored Chart.js. The data are integer Wh; the y axis shows kWh in the page language,
   tooltips the exact Wh. Bars are solid when final and light hatched when provisional; the legend
   names both. The words come translated with the data (``text``). */
(function () {
  "use strict";

  var COLORS = {
    inflow: "#2e7d32",
    outflow: "#c62828",
    final: "#1f4e79",
    provisional: "#f0a030"
  };
  var LANG = document.documentElement.lang || "en";
  var KWH = new Intl.NumberFormat(LANG, { maximumFractionDigits: 3 });
  var WH = new Intl.NumberFormat(LANG, { maximumFractionDigits: 0 });

  function text(data, key, fallback) {
    return (data.text && data.text[key]) || fallback;
  }

  function exactWh(value) {
    return WH.format(value) + "\u00a0Wh";
  }

  function kwhTicks(data) {
    var divisor = data.divisor || 1000;
    return function (value) { return KWH.format(value / divisor); };
  }

  /* Quarter-hour and hour axes: a tick only on full local hours, every ``step`` hours as the width allows. */
  function hourTicks(data, canvas) {
    var width = canvas.parentNode.clientWidth;
    var step = width > 900 ? 1 : width > 500 ? 3 : 6;
    return {
      autoSkip: false, maxRotation: 0,
      callback: function (value, index) {
        var label = data.labels[index];
        if (label.slice(-3) !== ":00") {
          return null;
        }
        return Number(label.slice(-5, -3)) % step === 0 ? label : null;
      }
    };
  }

  function statusLegend(data, color, fill) {
    /* Two legend entries that say what solid and hatched bars mean. */
    return [
      { text: text(data, "final", "final"), fillStyle: color, strokeStyle: color, lineWidth: 1, datasetIndex: -1 },
      { text: text(data, "provisional", "provisional"), fillStyle: fill, strokeStyle: COLORS.provisional, lineWidth: 1, datasetIndex: -1 }
    ];
  }

  function legendLabels(data, extra) {
    return {
      boxWidth: 12, boxHeight: 12, padding: 8,
      generateLabels: function (chart) {
        var labels = Chart.defaults.plugins.legend.labels.generateLabels(chart);
        return labels.concat(extra);
      }
    };
  }

  function legendClick(event, item, legend) {
    if (item.datasetIndex < 0) {  // the status entries only explain, they hide nothing
      return;
    }
    Chart.defaults.plugins.legend.onClick.call(this, event, item, legend);
  }

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
    var sign = {};
    if (data.series.net) {
      datasets.push({
        type: "bar", label: text(data, "net", "Net"), data: data.series.net, backgroundColor: netColors,
        borderColor: netBorders, borderWidth: 1, order: 2
      });
    }
    if (data.series.inflow) {
      datasets.push({
        type: "line", label: text(data, "inflow", "Inflow"), data: data.series.inflow, borderColor: COLORS.inflow,
        backgroundColor: COLORS.inflow, pointRadius: 0, borderWidth: 1.5, stepped: "middle", order: 1
      });
    }
    if (data.series.outflow) {
      sign[datasets.length] = -1;
      datasets.push({
        type: "line", label: text(data, "outflow", "Outflow (drawn below zero)"),
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
          x: { ticks: hourTicks(data, canvas) },
          y: {
            ticks: { callback: kwhTicks(data) },
            title: { display: canvas.parentNode.clientWidth > 480, text: data.unit }
          }
        },
        plugins: {
          legend: {
            position: "bottom",
            labels: legendLabels(data, data.series.net ? statusLegend(data, COLORS.final, provisionalFill) : []),
            onClick: legendClick
          },
          tooltip: {
            callbacks: {
              label: function (item) {
                return item.dataset.label + ": " + exactWh((sign[item.datasetIndex] || 1) * item.raw);
              },
              footer: function (items) {
                if (!items.length) {
                  return "";
                }
                var i = items[0].dataIndex;
                var status = data.empty && data.empty[i] ? text(data, "no_data", "no data") : text(data, data.status[i], data.status[i]);
                return text(data, "status", "Status") + ": " + status + " · " + data.utc[i];
              }
            }
          }
        }
      }
    });
  }

  /* Allocation charts: stacked bars per interval; a provisional interval's bars are hatched in
     their own colour, and an interval with a gap (a measurement missing, nothing allocated) sits
     on a light red band with a red mark on top. */
  var PALETTE = ["#1f4e79", "#2e7d32", "#6a3d9a", "#00838f", "#ad1457", "#795548", "#7cb342", "#3f88c5"];
  var KIND_COLORS = { others: "#8a96a8", surplus: "#c9b458", gap: "#d32f2f", local: "#2e7d32", residual: "#7f93b0" };
  var GAP_FILL = "rgba(211, 47, 47, 0.14)";

  function hatchOf(color) {
    var size = 8;
    var canvas = document.createElement("canvas");
    canvas.width = size;
    canvas.height = size;
    var ctx = canvas.getContext("2d");
    ctx.globalAlpha = 0.35;
    ctx.fillStyle = color;
    ctx.fillRect(0, 0, size, size);
    ctx.globalAlpha = 1;
    ctx.strokeStyle = color;
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    ctx.moveTo(0, size);
    ctx.lineTo(size, 0);
    ctx.moveTo(-size / 2, size / 2);
    ctx.lineTo(size / 2, -size / 2);
    ctx.moveTo(size / 2, size * 1.5);
    ctx.lineTo(size * 1.5, size / 2);
    ctx.stroke();
    return ctx.createPattern(canvas, "repeat");
  }

  function byStatus(data, color) {
    var hatched = hatchOf(color);
    return data.status.map(function (s) { return s === "final" ? color : hatched; });
  }

  function gapBands(gaps) {
    return {
      id: "gapBands",
      beforeDatasetsDraw: function (chart) {
        var area = chart.chartArea;
        var x = chart.scales.x;
        var ctx = chart.ctx;
        var width = x.width / Math.max(gaps.length, 1);
        ctx.save();
        gaps.forEach(function (count, i) {
          if (!count) {
            return;
          }
          var left = x.getPixelForValue(i) - width / 2;
          ctx.fillStyle = GAP_FILL;
          ctx.fillRect(left, area.top, width, area.bottom - area.top);
          ctx.fillStyle = KIND_COLORS.gap;
          ctx.fillRect(left, area.top, width, 4);
        });
        ctx.restore();
      }
    };
  }

  function stackedOptions(data, canvas, statusColor) {
    var ticks = { autoSkip: true, maxTicksLimit: 12, maxRotation: 0 };
    if (data.resolution === "15min") {
      ticks = hourTicks(data, canvas);
    } else if (data.resolution === "1h") {  // a week of hours: one tick per local day
      ticks = {
        autoSkip: false, maxRotation: 0,
        callback: function (value, index) {
          var label = data.labels[index];
          return label.slice(-5) === "00:00" ? label.slice(0, -6) : null;
        }
      };
    }
    return {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      datasets: { bar: { barPercentage: 1, categoryPercentage: 0.92, borderWidth: 0 } },
      scales: {
        x: { stacked: true, ticks: ticks },
        y: {
          stacked: true, beginAtZero: true, ticks: { callback: kwhTicks(data) },
          title: { display: canvas.parentNode.clientWidth > 480, text: data.unit }
        }
      },
      plugins: {
        legend: {
          position: "bottom",
          labels: legendLabels(data, statusLegend(data, statusColor, hatchOf(statusColor))),
          onClick: legendClick
        },
        tooltip: {
          filter: function (item) { return item.raw !== 0; },
          callbacks: {
            label: function (item) { return item.dataset.label + ": " + exactWh(item.raw); },
            footer: function (items) {
              if (!items.length) {
                return "";
              }
              var i = items[0].dataIndex;
              var gap = data.gaps[i] ? " · " + data.gaps[i] + " " + text(data, "gap_quarters", "quarter-hours missing a measurement") : "";
              return text(data, "status", "Status") + ": " + text(data, data.status[i], data.status[i]) + gap + " · " + data.utc[i];
            }
          }
        }
      }
    };
  }

  function drawScheme() {
    var source = document.getElementById("scheme-chart-data");
    if (!source || typeof Chart === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    var colors = data.series.map(function (s, j) {
      return s.kind === "consumer" ? PALETTE[j % PALETTE.length] : KIND_COLORS[s.kind];
    });
    Array.prototype.forEach.call(document.querySelectorAll("canvas[data-scheme-source]"), function (canvas) {
      var part = data.sources[Number(canvas.getAttribute("data-scheme-source"))];
      var datasets = data.series.map(function (s, j) {
        return {
          label: s.label, data: part.data[j], backgroundColor: byStatus(data, colors[j]), stack: "generation"
        };
      });
      new Chart(canvas, {
        type: "bar",
        data: { labels: data.labels, datasets: datasets },
        options: stackedOptions(data, canvas, PALETTE[0]),
        plugins: [gapBands(data.gaps)]
      });
    });
  }

  function drawConsumer() {
    var canvas = document.getElementById("consumer-chart");
    var source = document.getElementById("consumer-chart-data");
    if (!canvas || !source || typeof Chart === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    var parts = [
      ["local", text(data, "local", "Local energy")],
      ["residual", text(data, "residual", "Residual supply")],
      ["unallocated", text(data, "unallocated", "Not allocated (gap)")]
    ];
    var datasets = parts.filter(function (p) {
      return p[0] !== "unallocated" || data.series.unallocated.some(function (v) { return v !== 0; });
    }).map(function (p) {
      var color = KIND_COLORS[p[0] === "unallocated" ? "gap" : p[0]];
      return { label: p[1], data: data.series[p[0]], backgroundColor: byStatus(data, color), stack: "consumption" };
    });
    new Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets: datasets },
      options: stackedOptions(data, canvas, KIND_COLORS.local),
      plugins: [gapBands(data.gaps)]
    });
  }

  function init() {
    ["balance-chart", "residual-chart"].forEach(draw);
    drawScheme();
    drawConsumer();
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
