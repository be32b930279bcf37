#!/usr/bin/env bash
# The real parts from Debian that the tests use: GStreamer with PyGObject (the pyds app's pipeline, NVIDIA's
# elements stood in by standard ones; x264 and libav for H.264), mosquitto (a real MQTT broker for emulate
# --publish), and through them libglib-2.0, whose GKeyFile reads and writes nvinfer's configs. Installed once;
# without apt (or root) the tests that need them say so and skip. Called by scripts/setup.sh and by .ci/run
# before check_install.sh.
set -euo pipefail
DEBIAN_PACKAGES="python3-gi python3-numpy gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  gstreamer1.0-libav gir1.2-gst-rtsp-server-1.0 mosquitto"
missing=""
for pkg in $DEBIAN_PACKAGES; do
  case "$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null)" in ii*) ;; *) missing="$missing $pkg" ;; esac
done
if [ -n "${missing// /}" ] && command -v apt-get >/dev/null; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  echo "installing from Debian: $missing"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing; } \
      >/tmp/edgeexport-apt.log 2>&1; then
    echo "warning: apt-get could not install $missing (see /tmp/edgeexport-apt.log); their tests will skip" >&2
  fi
fi
