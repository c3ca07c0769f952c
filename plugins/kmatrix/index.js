// The plugin's entry as Nx sees it (package.json "main"). Node loads index.ts itself (type
// stripping); an entry ending in .ts would make Nx, on every command, read tsconfig with the
// TypeScript compiler and hook Node's module resolver for the plugin's sake, ~0.15 s of an
// all-cached `nx run-many` at 5,000 targets (profiled). A .js entry is what Nx takes as built.
export * from './index.ts';
