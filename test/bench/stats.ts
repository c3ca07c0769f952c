/** Order statistics of timing samples, for the bench figures. */

/** The sample at quantile q (0…1) of the sorted samples: p50 is the median of an odd count. */
export function percentile(xs: number[], q: number): number {
  return [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
}

export const median = (xs: number[]): number => percentile(xs, 0.5);
