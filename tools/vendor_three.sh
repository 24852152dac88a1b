#!/usr/bin/env bash
# Rebuild viewer/static/vendor/three.module.min.js: three.js + OrbitControls as ONE minified ES module.
# Pinned versions; runs npm in a temporary folder so nothing from npm enters the repository except the output,
# the licence and VENDORED.md. Needs node + npm (only to re-vendor; users and CI never need them).
set -euo pipefail
THREE_VERSION=0.187.0
ESBUILD_VERSION=0.28.2
HERE="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$HERE/viewer/static/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund "three@$THREE_VERSION" "esbuild@$ESBUILD_VERSION"

# Only the names the page imports: esbuild drops the rest (tree shaking). Add a name here when the page needs it.
cat > entry.js <<'JS'
export {
  AmbientLight, BufferAttribute, BufferGeometry, Color, DirectionalLight, DoubleSide, DynamicDrawUsage,
  Mesh, MeshLambertMaterial, PerspectiveCamera, Points, PointsMaterial, SRGBColorSpace, Scene, Sphere,
  Vector3, WebGLRenderer, REVISION,
} from "three";
export { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
JS

npx esbuild entry.js --bundle --minify --format=esm --target=es2020 --legal-comments=none \
  --outfile=three.module.min.js --log-level=warning

mkdir -p "$OUT"
cp three.module.min.js "$OUT/three.module.min.js"
cp node_modules/three/LICENSE "$OUT/LICENSE"
SHA="$(sha256sum "$OUT/three.module.min.js" | cut -d' ' -f1)"
SIZE="$(stat -c %s "$OUT/three.module.min.js")"
cat > "$OUT/VENDORED.md" <<MD
# Vendored: three.js

| | |
|---|---|
| package | npm \`three@$THREE_VERSION\` (MIT licence, text in \`LICENSE\` beside this file) |
| contents | \`three\` (selected exports) + \`examples/jsm/controls/OrbitControls.js\`, bundled as one ES module |
| bundler | npm \`esbuild@$ESBUILD_VERSION\`: \`--bundle --minify --format=esm --target=es2020\` |
| file | \`three.module.min.js\`, $SIZE bytes |
| SHA-256 | \`$SHA\` |

Reproduce with \`tools/vendor_three.sh\` (needs node and npm; nothing else in the project does).
The export list lives in that script: add a name there when the page needs one, then re-run it.
MD
echo "wrote $OUT/three.module.min.js ($SIZE bytes, sha256 $SHA)"
