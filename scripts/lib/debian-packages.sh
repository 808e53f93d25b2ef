# Sourced by scripts that need tools Fabric installs from Debian packages (the Python
# client's codegen and tests, the Go stubs check). PyPI and the Go module proxy are not
# used: Debian's packages are the one source of these tools, so CI and every developer's
# machine get the same versions.

# ensure_debian_packages PKG...: installs the packages that are not installed yet.
# As root with apt-get (CI, the project's machines), it installs them; anywhere else it
# fails, naming the command to run.
ensure_debian_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    printf 'missing Debian packages: %s\n  install them: sudo apt-get install -y --no-install-recommends %s\n' "${missing[*]}" "${missing[*]}" >&2
    return 1
  fi
  printf 'installing Debian packages: %s\n' "${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine has no package lists yet: update once, only when the install needs it.
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; }
}
