// Playback rates and how they read: frames per second and simulated time per wall-clock second.
export const FPS_CHOICES = [1, 2, 5, 10, 15, 30, 60]; // playback rates offered; each is also shown as a time ratio
export const DEFAULT_FPS = 10;

// Simulated seconds per wall-clock second as text: "1/100 real time", "real time", "2.5x real time".
export function ratioText(ratio) {
  if (Math.abs(ratio - 1) < 1e-9) return "real time";
  if (ratio > 1) return `${Number(ratio.toPrecision(3))}× real time`;
  return `1/${Number((1 / ratio).toPrecision(3))} real time`;
}
