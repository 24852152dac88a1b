// The probe plot: one node's quantity over time, ground truth and prediction together, the current frame marked.
// Plain 2-D canvas drawing (no chart library), so the page and its PNG snapshots draw the same thing.
import { formatNumber } from "./legend.js";

export const SERIES_COLORS = { gt: "#e6e6e6", pred: "#f0a35e" }; // ground truth light grey, prediction orange
export const CURSOR_COLOR = "#5ec8f0";
const BACKGROUND = "#24272e";
const MARGIN = { left: 64, right: 180, top: 22, bottom: 24 };

// data: the /api/probe answer; frame: current frame; scale/unit: display scaling (e.g. error in mm);
// timeScale/timeUnit: the time axis (s or ms).
export function drawPlot(ctx, width, height, { data, frame, scale = 1, unit, timeScale = 1, timeUnit = "s" }) {
  ctx.save();
  ctx.fillStyle = BACKGROUND;
  ctx.fillRect(0, 0, width, height);
  const entries = Object.entries(data.series);
  const values = entries.flatMap(([, ys]) => ys.map((v) => v * scale));
  let lo = Math.min(...values), hi = Math.max(...values);
  if (!(hi > lo)) { const pad = Math.abs(lo) * 0.05 || 1e-9; lo -= pad; hi += pad; }
  const pad = 0.06 * (hi - lo);
  lo = lo >= 0 && lo - pad < 0 ? 0 : lo - pad; // magnitudes (error, speed, ...) keep 0 as the floor
  hi += pad;
  const time = data.time, last = time.length - 1;
  const x0 = MARGIN.left, x1 = width - MARGIN.right, y0 = MARGIN.top, y1 = height - MARGIN.bottom;
  const X = (k) => x0 + (last > 0 ? k / last : 0) * (x1 - x0);
  const Y = (v) => y1 - ((v - lo) / (hi - lo)) * (y1 - y0);
  // frame and axes
  ctx.strokeStyle = "#5a5f6a";
  ctx.lineWidth = 1;
  ctx.strokeRect(x0 + 0.5, y0 + 0.5, x1 - x0, y1 - y0);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#b8bcc6";
  ctx.textBaseline = "middle";
  ctx.textAlign = "right";
  ctx.fillText(formatNumber(hi), x0 - 6, y0 + 4);
  ctx.fillText(formatNumber(lo), x0 - 6, y1 - 4);
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText(`${formatNumber(time[0] * timeScale)} ${timeUnit}`, x0, y1 + 5);
  ctx.textAlign = "right";
  ctx.fillText(`${formatNumber(time[last] * timeScale)} ${timeUnit}`, x1, y1 + 5);
  ctx.textAlign = "left";
  ctx.fillStyle = "#e6e6e6";
  ctx.font = "12px system-ui, sans-serif";
  const type = data.node_type_name ? ` (${data.node_type_name})` : "";
  ctx.fillText(`node ${data.node}${type}: ${data.quantity}${unit ? ` [${unit}]` : ""}`, x0, 4);
  // current frame
  const t = Math.max(0, Math.min(last, frame));
  ctx.strokeStyle = CURSOR_COLOR;
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(X(t), y0);
  ctx.lineTo(X(t), y1);
  ctx.stroke();
  // series: prediction dashed over the solid ground truth, so equal curves stay visible
  for (const [src, ys] of entries) {
    ctx.strokeStyle = SERIES_COLORS[src] || "#ffffff";
    ctx.lineWidth = 2;
    ctx.setLineDash(src === "pred" && entries.length > 1 ? [6, 4] : []);
    ctx.beginPath();
    ys.forEach((v, k) => (k ? ctx.lineTo(X(k), Y(v * scale)) : ctx.moveTo(X(k), Y(v * scale))));
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = SERIES_COLORS[src] || "#ffffff";
    ctx.beginPath();
    ctx.arc(X(t), Y(ys[t] * scale), 3.5, 0, 2 * Math.PI);
    ctx.fill();
  }
  // key, right of the plot: one line per series with its value at the current frame
  entries.forEach(([src, ys], i) => {
    const top = y0 + 4 + 30 * i;
    ctx.fillStyle = SERIES_COLORS[src] || "#ffffff";
    ctx.fillRect(x1 + 12, top + 5, 16, 3);
    ctx.fillStyle = "#e6e6e6";
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText(shorten(data.labels[src] || src, 24), x1 + 34, top);
    ctx.fillStyle = "#b8bcc6";
    ctx.fillText(`${formatNumber(ys[t] * scale)}${unit ? ` ${unit}` : ""}`, x1 + 34, top + 14);
  });
  ctx.restore();
}

function shorten(text, count) { return text.length > count ? `${text.slice(0, count - 1)}…` : text; }
