// The colour legend, drawn on any 2-D canvas context: the overlay on the page and the PNG snapshots.

export function drawLegend(ctx, x, y, width, { name, unit, lo, hi, colormapSRGB }) {
  const barHeight = 14;
  ctx.save();
  ctx.fillStyle = "rgba(0, 0, 0, 0.55)";
  ctx.fillRect(x, y, width, 54);
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
  ctx.fillText(formatNumber(hi), left + barWidth, y + 39);
  ctx.restore();
}

export function formatNumber(value) {
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  return magnitude >= 1e4 || magnitude < 1e-2 ? value.toExponential(2) : value.toPrecision(3);
}
