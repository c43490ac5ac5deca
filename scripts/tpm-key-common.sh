# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
# Shared by scripts/tpm-seal-key.sh and scripts/tpm-unseal-key.sh (sourced, not run).
#
# Sealed-key directory layout (format 1):
#   seal.pub   TPM2B_PUBLIC of the sealed data object (tpm2_create -u)
#   seal.priv  TPM2B_PRIVATE of it, encrypted by the TPM under the owner primary key: only the
#              TPM that sealed it (same owner seed, i.e. same chip / same swtpm state) can load it
#   seal.meta  "format=1", "primary=<alg>", "pcrs=<selection or none>" (not secret)
# The primary key is not stored: it is re-derived from the owner seed with the same template on
# every unseal (tpm2_createprimary is deterministic for a given seed and template).
#
# The TPM is chosen by TPM2TOOLS_TCTI (tpm2-tools' own variable), for example
#   TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=2321"  a software TPM (swtpm socket)
#   TPM2TOOLS_TCTI="device:/dev/tpmrm0"              the kernel resource manager (hardware TPM)
# Unset: tpm2-tools' default search (tabrmd, then /dev/tpmrm0, then /dev/tpm0).

# shellcheck disable=SC2034 # used by the scripts that source this file
TPM_KEY_FORMAT=1
TPM_KEY_PRIMARY_ALG="ecc256:aes128cfb"

# One clear line on stderr, then exit 1. The key never appears in a message.
tpm_die() {
  echo "$TPM_KEY_PROG: error: $*" >&2
  exit 1
}

# Checks that the tpm2-tools programs this script calls are on PATH.
tpm_require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 ||
      tpm_die "$tool not found (install tpm2-tools: scripts/setup-deps.sh)"
  done
}

# Runs a tpm2-tools command with its stdout discarded; on failure dies with `what` and the
# tool's telling error line (tpm_error_line). Needs tpm_scratch_init first.
tpm_run() {
  local what="$1"
  shift
  local err
  if ! err="$("$@" 2>&1 >/dev/null)"; then
    tpm_fail "$what" "$err"
  fi
  tpm_flush_new_transients
}

# The most telling line of a tpm2-tools error output: the last one naming a TPM response code
# ("Esys_Load(0x1DF) - tpm:parameter(1):integrity check failed"), else the last non-empty one.
tpm_error_line() {
  local line
  line="$(printf '%s\n' "$1" | grep -E '^ERROR: [A-Za-z0-9_]+\(0x[0-9A-Fa-f]+\)' | tail -n 1 || true)"
  [ -n "$line" ] || line="$(printf '%s\n' "$1" | grep -v '^[[:space:]]*$' | tail -n 1 || true)"
  printf '%s' "${line#ERROR: }"
}

# Dies with "<what> failed (TPM2TOOLS_TCTI=...): <the telling line of the tool's stderr>".
tpm_fail() {
  local line
  line="$(tpm_error_line "$2")"
  tpm_die "$1 failed (TPM2TOOLS_TCTI=${TPM2TOOLS_TCTI:-default}$(tpm_reach_hint "$2")): ${line:-no message}"
}

# ", TPM not reachable" when tpm2-tools could not open the TPM interface at all.
tpm_reach_hint() {
  case "$1" in *"Could not load tcti"*) printf ', TPM not reachable' ;; esac
}

# Makes a private scratch directory for TPM context files (not secret: contexts of transient
# objects and sessions) and flushes, on exit, the transient objects and the session this script
# loaded: a TPM reached without a resource manager (swtpm, /dev/tpm0) keeps them loaded until
# flushed, and it has only a few slots. The objects to flush are the transient handles present
# at exit that were not present at start (tpm2_flushcontext cannot flush an object by its
# context file). Through /dev/tpmrm0 the kernel flushes them anyway and both lists are empty.
tpm_scratch_init() {
  TPM_SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/tpm-key.XXXXXX")" || tpm_die "cannot create a scratch directory"
  TPM_TRANSIENTS_BEFORE=" $(tpm_transients | tr '\n' ' ') "
  trap tpm_scratch_cleanup EXIT
}

tpm_transients() {
  tpm2_getcap handles-transient 2>/dev/null | sed -n 's/^- //p' || true
}

# Flushes the transient objects loaded since tpm_scratch_init. Called after each step: the
# steps pass objects to each other as context files, and swtpm has only three object slots.
tpm_flush_new_transients() {
  local handle
  for handle in $(tpm_transients); do
    case "$TPM_TRANSIENTS_BEFORE" in
      *" $handle "*) ;;
      *) tpm2_flushcontext "$handle" >/dev/null 2>&1 || true ;;
    esac
  done
}

tpm_scratch_cleanup() {
  if [ -f "$TPM_SCRATCH/session.ctx" ]; then
    tpm2_flushcontext "$TPM_SCRATCH/session.ctx" >/dev/null 2>&1 || true
  fi
  tpm_flush_new_transients
  rm -rf "$TPM_SCRATCH" || true
}

# Creates the owner-hierarchy primary storage key into $TPM_SCRATCH/primary.ctx.
tpm_create_primary() {
  tpm_run "creating the owner primary key (tpm2_createprimary)" \
    tpm2_createprimary -Q -C o -g sha256 -G "$TPM_KEY_PRIMARY_ALG" -c "$TPM_SCRATCH/primary.ctx"
}

# A PCR selection as tpm2-tools writes it: bank:index[,index...][+bank:...], e.g. sha256:0,7.
tpm_valid_pcrs() {
  local bank='(sha1|sha256|sha384|sha512):[0-9]{1,2}(,[0-9]{1,2})*'
  [[ "$1" =~ ^$bank(\+$bank)*$ ]]
}
