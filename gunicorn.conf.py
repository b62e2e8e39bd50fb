"""gunicorn settings for production (read by gunicorn from the working directory).

Threads per worker, so a client that sends its body slowly holds one thread, not a whole process;
behind a buffering reverse proxy (see README "Production topology") slow clients never reach the
workers at all. Every value can be overridden on the command line or with GUNICORN_CMD_ARGS.
"""

import multiprocessing
import os

bind = os.environ.get("BKM_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("BKM_WEB_WORKERS", multiprocessing.cpu_count() * 2))
worker_class = "gthread"
threads = int(os.environ.get("BKM_WEB_THREADS", 4))
timeout = 120  # a bulk request of 100,000 items takes seconds, not minutes
graceful_timeout = 30
keepalive = 5
limit_request_line = 8190
limit_request_fields = 100
max_requests = 10_000  # recycle workers now and then
max_requests_jitter = 1_000
accesslog = "-"
