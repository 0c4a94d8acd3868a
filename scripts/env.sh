# Sourced by the scripts: one build folder outside the clone, kept between
# runs (CI clones afresh each time; rebuilding every dependency on 2 cores
# would take most of the CI budget).
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  export CARGO_TARGET_DIR=/var/tmp/anpr-target
fi
mkdir -p "$CARGO_TARGET_DIR"
# Debian installs nats-server in /usr/sbin, which is not on every PATH.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac
