#!/usr/bin/env bash
# Start or stop a Spark standalone master + one worker on loopback, using the launch scripts that
# ship inside the pyspark package (SPARK_HOME = pyspark's package directory).
#
#   scripts/spark_standalone.sh start STATE_DIR [MASTER_PORT] [WORKER_CORES] [WORKER_MEMORY]
#       prints the master URL (spark://127.0.0.1:PORT) once the worker has registered
#   scripts/spark_standalone.sh stop STATE_DIR
#
# pyspark's wheel has sbin/spark-daemon.sh but not start-master.sh / start-worker.sh; those are
# thin wrappers around spark-daemon.sh, which is what we call. Everything (pid files, logs, work
# dirs) lives under STATE_DIR, so several clusters never clash and `stop` ends only ours.
set -euo pipefail

cmd=${1:?usage: $0 start|stop STATE_DIR [MASTER_PORT] [WORKER_CORES] [WORKER_MEMORY]}
state=${2:?STATE_DIR required}
PYTHON=${PYTHON:-${PYSPARK_PYTHON:-python3}}

SPARK_HOME=${SPARK_HOME:-$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}
mkdir -p "$state"
state=$(cd "$state" && pwd)
export SPARK_HOME
export SPARK_PID_DIR="$state/pids" SPARK_LOG_DIR="$state/logs" SPARK_WORKER_DIR="$state/work"
export SPARK_IDENT_STRING="pmd-$(basename "$state")"
export SPARK_LOCAL_IP=127.0.0.1 SPARK_MASTER_HOST=127.0.0.1
export SPARK_MASTER_OPTS="${SPARK_MASTER_OPTS:-} -Dspark.master.rest.enabled=false"
export SPARK_DAEMON_MEMORY=${SPARK_DAEMON_MEMORY:-256m}
unset SPARK_NO_DAEMONIZE
export PYSPARK_PYTHON=${PYSPARK_PYTHON:-$PYTHON}
daemon="$SPARK_HOME/sbin/spark-daemon.sh"
chmod +x "$daemon" "$SPARK_HOME/sbin/spark-config.sh" "$SPARK_HOME/bin/spark-class" 2>/dev/null || true

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

case "$cmd" in
  start)
    port=${3:-$(free_port)}
    cores=${4:-2}
    mem=${5:-2g}
    mkdir -p "$SPARK_PID_DIR" "$SPARK_LOG_DIR" "$SPARK_WORKER_DIR"
    "$daemon" start org.apache.spark.deploy.master.Master 1 \
      --host 127.0.0.1 --port "$port" --webui-port "$(free_port)" >/dev/null
    url="spark://127.0.0.1:$port"
    for _ in $(seq 1 120); do
      if "$PYTHON" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $port)))"; then break; fi
      sleep 0.5
    done
    "$daemon" start org.apache.spark.deploy.worker.Worker 1 \
      --host 127.0.0.1 --cores "$cores" --memory "$mem" --webui-port "$(free_port)" \
      --work-dir "$SPARK_WORKER_DIR" "$url" >/dev/null
    for _ in $(seq 1 120); do
      if grep -qs "Successfully registered with master" "$SPARK_LOG_DIR"/*Worker*.out; then
        echo "$url"
        exit 0
      fi
      sleep 0.5
    done
    echo "worker did not register with $url; logs in $SPARK_LOG_DIR" >&2
    exit 1
    ;;
  stop)
    "$daemon" stop org.apache.spark.deploy.worker.Worker 1 >/dev/null || true
    "$daemon" stop org.apache.spark.deploy.master.Master 1 >/dev/null || true
    ;;
  *)
    echo "unknown command $cmd (start|stop)" >&2
    exit 2
    ;;
esac
