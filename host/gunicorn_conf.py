"""gunicorn settings for ``canopy serve`` (override any with gunicorn's own flags or GUNICORN_CMD_ARGS)."""

import multiprocessing
import os

from host.observability import logging_config

bind = os.environ.get("CANOPY_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("CANOPY_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 8)))
worker_class = "gthread"
# Load the app (and every plugin) once in the master and fork it: workers start at once and
# share the plugins' memory. Nothing opens a database connection or a thread before the
# fork: create_app does not touch the database and the plugin pool starts on first use.
preload_app = True
threads = int(os.environ.get("CANOPY_THREADS", 4))
timeout = 30
graceful_timeout = 20
keepalive = 5
max_requests = 10_000
max_requests_jitter = 1_000
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s'
forwarded_allow_ips = os.environ.get("CANOPY_FORWARDED_ALLOW_IPS", "127.0.0.1")
logconfig_dict = logging_config(os.environ.get("CANOPY_LOG_LEVEL", "INFO"))
