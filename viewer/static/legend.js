// Legends, drawn on any 2-D canvas context: the overlay on the page and the PNG snapshots.
// drawLegend: a colour bar with the field's name, unit, range and whether the range is fixed or per frame.
// drawCategories: one swatch and name per category (node types), for fields that are labels, not numbers.

export const LEGEND_HEIGHT = 54;
const ROW = 16;

export function drawLegend(ctx, x, y, width, { name, unit, lo, hi, colormapSRGB, mode }) {
  const barHeight = 14;
  ctx.save();
  ctx.fillStyle = "rgba(0, 0, 0, 0.55)";
  ctx.fillRect(x, y, width, LEGEND_HEIGHT);
  const left = x + 10, barWidth = width - 20;
  for (let i = 0; i < barWidth; i++) {
    const k = Math.round((i / Math.max(1, barWidth - 1)) * (colormapSRGB.length - 1));
    const [r, g, b] = colormapSRGB[k].map((c) => Math.round(c * 255));
    ctx.fillStyle = `rgb(${r},${g},${b})`;
    ctx.fillRect(left + i, y + 22, 1, barHeight);
  }
  ctx.fillStyle = "#e6e6e6";
  ctx.font = "12px system-ui, sans-serif";
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText(unit ? `${name} [${unit}]` : name, left, y + 5);
  ctx.fillText(formatNumber(lo), left, y + 39);
  ctx.textAlign = "right";
  if (mode) ctx.fillText(mode === "frame" ? "range: this frame" : "range: fixed", left + barWidth, y + 5);
  ctx.fillText(formatNumber(hi), left + barWidth, y + 39);
  ctx.restore();
}

export function categoriesHeight(count) { return 26 + ROW * count; }

// items: [{label, srgb: [r, g, b] in 0..1}]
export function drawCategories(ctx, x, y, width, { name, items }) {
  ctx.save();
  ctx.fillStyle = "rgba(0, 0, 0, 0.55)";
  ctx.fillRect(x, y, width, categoriesHeight(items.length));
  ctx.font = "12px system-ui, sans-serif";
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillStyle = "#e6e6e6";
  ctx.fillText(name, x + 10, y + 5);
  items.forEach(({ label, srgb }, i) => {
    const top = y + 22 + ROW * i;
    ctx.fillStyle = `rgb(${srgb.map((c) => Math.round(c * 255)).join(",")})`;
    ctx.fillRect(x + 10, top + 1, 18, 11);
    ctx.fillStyle = "#e6e6e6";
    ctx.fillText(label, x + 36, top);
  });
  ctx.restore();
}

export function formatNumber(value) {
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  return magnitude >= 1e4 || magnitude < 1e-2 ? value.toExponential(2) : value.toPrecision(3);
}
