/** The message sizes every benchmark reports, smallest first. */
export const SIZES: ReadonlyArray<{ label: string; bytes: number }> = [
  { label: "64 B", bytes: 64 },
  { label: "1 KiB", bytes: 1024 },
  { label: "10 KiB", bytes: 10 * 1024 },
  { label: "100 KiB", bytes: 100 * 1024 },
  { label: "1 MiB", bytes: 1024 * 1024 },
];
