# Sourced by the client test scripts: what to do when a toolchain they need
# is missing. Under CI (CI set and not "false"/"0") that fails the run, so a
# green CI means every client was tested; elsewhere it is a loud skip.

# missing_toolchain WHAT: WHAT names the client and the missing tool.
missing_toolchain() {
  local what=$1
  case "${CI:-}" in
    "" | false | 0)
      echo "################################################################" >&2
      echo "### SKIPPING $what" >&2
      echo "### (run 'make deps' to install it; under CI this fails)" >&2
      echo "################################################################" >&2
      exit 0
      ;;
    *)
      echo "error: $what (CI=$CI: nothing may be skipped)" >&2
      exit 1
      ;;
  esac
}
