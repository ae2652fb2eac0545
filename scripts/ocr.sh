#!/usr/bin/env bash
# Make sure Debian's Tesseract is installed with the English, French, German and Spanish data the
# screenshot check reads disclosures in (marketplace/proofs/checks/ocr.py), and the DejaVu fonts the
# OCR tests draw their screenshots with. Quick when it is there.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

LANGS=(eng fra deu spa)

missing() {
  command -v tesseract >/dev/null || return 0
  local have
  have="$(tesseract --list-langs 2>/dev/null)"
  for lang in "${LANGS[@]}"; do
    grep -qx "$lang" <<<"$have" || return 0
  done
  [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || return 0
  return 1
}

if missing; then
  echo "ocr: installing Debian's tesseract-ocr with ${LANGS[*]}" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 tesseract-ocr "${LANGS[@]/#/tesseract-ocr-}" fonts-dejavu-core >/dev/null
  if missing; then
    echo "ocr: tesseract, its ${LANGS[*]} data or the DejaVu fonts are still missing" >&2
    exit 1
  fi
fi
echo "ocr: $(tesseract --version 2>&1 | head -n 1) (${LANGS[*]})" >&2
