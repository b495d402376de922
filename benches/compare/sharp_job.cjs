// The comparison job for sharp: each image → WebP at 1200/800/400/150 px wide, q80,
// effort 4, auto-oriented, metadata dropped. sharp decodes once per output (clone()).
// Usage: node sharp_job.cjs SCRATCH_DIR FILE COUNT CONCURRENCY
// Prints one JSON line like the Rust `throughput` example.
const path = require("path");
const fs = require("fs");
const [scratch, file, countArg, concurrencyArg] = process.argv.slice(2);
const sharp = require(require.resolve("sharp", { paths: [scratch] }));
const count = Number(countArg);
const concurrency = Number(concurrencyArg);
const widths = [1200, 800, 400, 150];
sharp.concurrency(1); // libvips threads per operation; parallelism comes from jobs
sharp.cache(false);

async function job(buf) {
  const img = sharp(buf).rotate();
  const outs = await Promise.all(
    widths.map((w) =>
      img.clone().resize({ width: w, withoutEnlargement: true }).webp({ quality: 80, effort: 4 }).toBuffer()
    )
  );
  return outs.reduce((n, b) => n + b.length, 0);
}

(async () => {
  const buf = fs.readFileSync(file);
  const bytes = await job(buf); // warm-up, and the output size of one image
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next += 1;
        await job(buf);
      }
    })
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(JSON.stringify({
    tool: `sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}, libwebp ${sharp.versions.webp})`,
    threads: concurrency, count, seconds: +seconds.toFixed(3),
    img_per_s: +(count / seconds).toFixed(2), bytes, input: path.basename(file),
  }));
})();
