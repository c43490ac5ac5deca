#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Unseals a data key sealed by scripts/tpm-seal-key.sh and prints its text (64 lowercase hex
# digits and a newline, what data.key holds) on stdout, and nothing else. Made to be the
# command of `cvdeploy serve --decrypt-key-cmd`:
#
#   cvdeploy serve ... --decrypt-key-cmd "scripts/tpm-unseal-key.sh /etc/cvdeploy/sealed"
#
#   scripts/tpm-unseal-key.sh DIR
#
# The TPM is TPM2TOOLS_TCTI's (see scripts/tpm-key-common.sh), e.g.
#   TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=2321" or "device:/dev/tpmrm0".
# A key sealed with --pcrs unseals only while those PCRs hold the values they had at seal time.
# Exit 0 with the key on stdout; otherwise 1 (2 for usage), empty stdout and one line on stderr.
set -euo pipefail
umask 077

TPM_KEY_PROG="tpm-unseal-key"
# shellcheck source=SCRIPTDIR/tpm-key-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/tpm-key-common.sh"

usage() {
  echo "usage: $TPM_KEY_PROG DIR (a directory written by tpm-seal-key.sh)" >&2
  exit 2
}
(($# == 1)) || usage
case "$1" in -*) usage ;; esac
dir="$1"

for f in seal.pub seal.priv seal.meta; do
  [ -r "$dir/$f" ] ||
    tpm_die "$dir/$f is missing or unreadable (not a directory written by tpm-seal-key.sh)"
done
format="$(sed -n 's/^format=//p' "$dir/seal.meta")"
primary="$(sed -n 's/^primary=//p' "$dir/seal.meta")"
pcrs="$(sed -n 's/^pcrs=//p' "$dir/seal.meta")"
[ "$format" = "$TPM_KEY_FORMAT" ] ||
  tpm_die "$dir/seal.meta: unsupported format '${format}' (expected $TPM_KEY_FORMAT)"
[ "$primary" = "$TPM_KEY_PRIMARY_ALG" ] || tpm_die "$dir/seal.meta: unsupported primary key '${primary}'"
if [ "$pcrs" != "none" ] && ! tpm_valid_pcrs "$pcrs"; then
  tpm_die "$dir/seal.meta: bad pcrs '${pcrs}'"
fi
tpm_require_tools tpm2_createprimary tpm2_load tpm2_unseal tpm2_startauthsession tpm2_policypcr \
  tpm2_flushcontext tpm2_getcap

tpm_scratch_init
tpm_create_primary
tpm_run "loading the sealed object (tpm2_load; sealed by another TPM or another owner seed?)" \
  tpm2_load -Q -C "$TPM_SCRATCH/primary.ctx" -u "$dir/seal.pub" -r "$dir/seal.priv" \
  -c "$TPM_SCRATCH/seal.ctx"

auth_args=()
what="unsealing (tpm2_unseal)"
if [ "$pcrs" != "none" ]; then
  tpm_run "starting a policy session (tpm2_startauthsession)" \
    tpm2_startauthsession --policy-session -S "$TPM_SCRATCH/session.ctx"
  tpm_run "PCR policy over $pcrs (tpm2_policypcr)" \
    tpm2_policypcr -Q -S "$TPM_SCRATCH/session.ctx" -l "$pcrs"
  auth_args=(-p "session:$TPM_SCRATCH/session.ctx")
  what="unsealing (tpm2_unseal; PCRs $pcrs differ from seal time?)"
fi

# The key is captured in memory, checked, then printed; stderr of tpm2_unseal goes to a file
# in the private scratch directory so that stdout carries nothing but the key.
if ! key="$(tpm2_unseal -c "$TPM_SCRATCH/seal.ctx" "${auth_args[@]}" 2>"$TPM_SCRATCH/unseal.err")"; then
  tpm_fail "$what" "$(cat "$TPM_SCRATCH/unseal.err")"
fi
key="${key%$'\n'}"
[[ "$key" =~ ^[0-9a-f]{64}$ ]] || tpm_die "the unsealed data is not a data key (64 hex digits)"
printf '%s\n' "$key"
