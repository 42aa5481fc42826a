#!/usr/bin/env bash
# Installs the system packages forklm's tests and benchmarks need on Debian/Ubuntu: Chromium (which also brings
# SwiftShader's Vulkan driver), Mesa's EGL/GL (llvmpipe), and the C++ and OpenMP runtimes that ../shared/bin/llama-server
# links against (the remote-engine tests start it). Skips what is already installed. Needs root or sudo.
set -euo pipefail
pkgs=(chromium libvulkan1 libegl1 libegl-mesa0 libgl1-mesa-dri libgomp1 libstdc++6)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: system packages present (${pkgs[*]})"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
