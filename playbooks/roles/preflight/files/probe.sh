#!/bin/sh
# Print the facts the appliance roles need as one JSON object (POSIX sh, no dependencies).
container=$(systemd-detect-virt --container 2>/dev/null || true)
[ "$container" = none ] && container=""
[ -z "$container" ] && [ -f /.dockerenv ] && container=docker
nvidia_pci=0
if command -v lspci >/dev/null 2>&1; then
  nvidia_pci=$(lspci -n -d 10de: 2>/dev/null | awk '$2 ~ /^03/' | wc -l)
fi
b() { if [ "$1" ]; then echo true; else echo false; fi; }
nvidia_proc=$(b "$(test -e /proc/driver/nvidia/version && echo y)")
nvidia_dev=$(b "$(test -e /dev/nvidia0 && echo y)")
moddir=$(b "$(test -d "/lib/modules/$(uname -r)" && echo y)")
modules=$(cut -d' ' -f1 /proc/modules 2>/dev/null | tr '\n' ' ')
swap=$(swapon --show=NAME --noheadings 2>/dev/null | tr '\n' ' ')
apt_lists=$(ls /var/lib/apt/lists/ 2>/dev/null | grep -c '_Packages' || true)
debs_set=$(cat "$1/.imported" 2>/dev/null || true)  # the offline package set last unpacked (packages.yml)
chrony=$(b "$(test -x /usr/sbin/chronyd && echo y)")
# installed packages, so roles call apt only when something is missing (apt is the slowest module)
packages=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 2>/dev/null | awk '$1 == "ii" {print $2}' | tr '\n' ' ')
printf '{"container": "%s", "nvidia_pci": %d, "nvidia_proc": %s, "nvidia_dev": %s, "moddir": %s, ' \
  "$container" "$nvidia_pci" "$nvidia_proc" "$nvidia_dev" "$moddir"
printf '"modules": "%s", "swap": "%s", "apt_lists": %d, "debs_set": "%s", "chrony": %s, "packages": "%s"}\n' \
  "$modules" "$swap" "$apt_lists" "$debs_set" "$chrony" "$packages"
