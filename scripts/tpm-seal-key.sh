#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Seals a cvdeploy data key (the text `cvdeploy keygen --kind data` writes to data.key: 64 hex
# digits and a newline) into a TPM 2.0 sealed-data object under the owner hierarchy's primary
# key, and writes only the sealed blobs to DIR. Delete the plaintext key file afterwards.
#
#   scripts/tpm-seal-key.sh [--key-file FILE] [--pcrs SEL] DIR      (key from stdin without --key-file)
#
#   --key-file FILE  read the key text from FILE instead of stdin
#   --pcrs SEL       bind the key to the current values of these PCRs (e.g. sha256:0,7): unsealing
#                    then needs the same PCR values (same firmware, boot chain, Secure Boot state).
#                    Without --pcrs the key is bound to the TPM only (any process that can talk to
#                    that TPM's owner hierarchy can unseal it).
#   DIR              output directory (created; must not already hold a sealed key)
#
# The TPM is TPM2TOOLS_TCTI's (see scripts/tpm-key-common.sh), e.g.
#   export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=2321"
#   scripts/tpm-seal-key.sh --pcrs sha256:0,7 sealed/ <data.key
# Unseal with scripts/tpm-unseal-key.sh DIR (same TPM, same TPM2TOOLS_TCTI).
# Exit 0 on success with nothing on stdout; otherwise 1 (2 for usage) and one line on stderr.
set -euo pipefail
umask 077

TPM_KEY_PROG="tpm-seal-key"
# shellcheck source=SCRIPTDIR/tpm-key-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/tpm-key-common.sh"

usage() {
  echo "usage: $TPM_KEY_PROG [--key-file FILE] [--pcrs SEL] DIR (key text on stdin without --key-file)" >&2
  exit 2
}

key_file=""
pcrs=""
dir=""
while (($#)); do
  case "$1" in
    --key-file) (($# >= 2)) || usage; key_file="$2"; shift 2 ;;
    --pcrs) (($# >= 2)) || usage; pcrs="$2"; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "$TPM_KEY_PROG: error: unknown option $1" >&2; usage ;;
    *) [ -z "$dir" ] || usage; dir="$1"; shift ;;
  esac
done
[ -n "$dir" ] || usage
if [ -n "$pcrs" ] && ! tpm_valid_pcrs "$pcrs"; then
  tpm_die "--pcrs '$pcrs' is not a PCR selection such as sha256:0,7"
fi
tpm_require_tools tpm2_createprimary tpm2_create tpm2_createpolicy tpm2_flushcontext tpm2_getcap

# The key stays in shell memory: read once, checked, handed to tpm2_create on its stdin.
if [ -n "$key_file" ]; then
  [ -r "$key_file" ] || tpm_die "cannot read key file $key_file"
  key="$(head -c 200 -- "$key_file")" || tpm_die "cannot read key file $key_file"
else
  key="$(head -c 200)" || tpm_die "cannot read the key from stdin"
fi
key="${key%$'\n'}"
[[ "$key" =~ ^[0-9a-fA-F]{64}$ ]] ||
  tpm_die "the key is not 64 hex digits (the text of a data.key written by cvdeploy keygen --kind data)"
key="${key,,}" # unseal prints it as keygen writes it: lowercase

if [ -e "$dir/seal.pub" ] || [ -e "$dir/seal.priv" ]; then
  tpm_die "$dir already holds a sealed key (remove it first)"
fi
mkdir -p -- "$dir" || tpm_die "cannot create $dir"

tpm_scratch_init
tpm_create_primary
policy_args=()
if [ -n "$pcrs" ]; then
  # A trial policy session computes the PolicyPCR digest over the PCRs' current values.
  tpm_run "computing the PCR policy for $pcrs (tpm2_createpolicy)" \
    tpm2_createpolicy -Q --policy-pcr -l "$pcrs" -L "$TPM_SCRATCH/pcr.policy"
  # No userwithauth: the policy is the only way to use the object.
  policy_args=(-L "$TPM_SCRATCH/pcr.policy" -a "fixedtpm|fixedparent|noda")
fi

create_err=""
if ! create_err="$(printf '%s\n' "$key" |
  tpm2_create -Q -C "$TPM_SCRATCH/primary.ctx" -g sha256 "${policy_args[@]}" -i - \
    -u "$dir/seal.pub.tmp" -r "$dir/seal.priv.tmp" 2>&1 >/dev/null)"; then
  rm -f "$dir/seal.pub.tmp" "$dir/seal.priv.tmp"
  tpm_fail "sealing the key (tpm2_create)" "$create_err"
fi
unset key
printf 'format=%s\nprimary=%s\npcrs=%s\n' "$TPM_KEY_FORMAT" "$TPM_KEY_PRIMARY_ALG" "${pcrs:-none}" \
  >"$dir/seal.meta"
mv -f "$dir/seal.pub.tmp" "$dir/seal.pub"
mv -f "$dir/seal.priv.tmp" "$dir/seal.priv"
chmod 600 "$dir/seal.pub" "$dir/seal.priv"
