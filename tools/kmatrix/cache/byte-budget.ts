/**
 * A number of bytes that requests in flight may hold in memory together: a request claims what it
 * needs before holding it and releases it after, and one that finds no room takes a path that
 * holds nothing (streams to or from disk instead).
 */
export class ByteBudget {
  private used = 0;
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  claim(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used -= bytes;
  }
}
