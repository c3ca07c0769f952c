/** Order statistics of timing samples, for the bench figures. */

/** The sample at quantile q (0…1) of the sorted samples: p50 is the median of an odd count. */
export function percentile(xs: number[], q: number): number {
  return [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
}

export const median = (xs: number[]): number => percentile(xs, 0.5);

/** Two sides measured in rounds: each round's ratio, in the order the rounds ran, and their median. */
export interface PairedRatio {
  ratio: number;
  each: number[];
}

/**
 * The ratio of two sides measured in rounds (each round runs the sides back to back): the median
 * of the rounds' own ratios. A slow stretch of a shared machine falls on both runs of a round, so
 * it moves that round's ratio far less than it moves either side's median; the ratio of the two
 * medians can pair one side's fast round with the other side's slow one.
 */
export function pairedRatio(ours: readonly number[], baseline: readonly number[]): PairedRatio {
  if (ours.length !== baseline.length || ours.length === 0)
    throw new Error(`paired samples differ in count: ${ours.length} and ${baseline.length}`);
  const each = ours.map((x, i) => x / baseline[i]!);
  return { ratio: median(each), each };
}
