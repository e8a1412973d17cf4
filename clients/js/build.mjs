// Builds payflow.js and PayFlow's frames into chalicelib/static/js/v1/, which the app serves at
// /js/v1/ (chalicelib/api/checkout.py) and `chalice package` ships. Nothing is fetched at run
// time: each script is one self-contained file.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "..", "chalicelib", "static", "js", "v1");
mkdirSync(out, { recursive: true });

await build({
  entryPoints: ["payflow", "elements", "challenge", "customer"].map((name) => join(here, "src", `${name}.ts`)),
  outdir: out,
  bundle: true,
  format: "iife",
  target: "es2020",
  minify: true,
  sourcemap: false,
  legalComments: "none",
  logLevel: "warning",
});
for (const page of ["elements.html", "challenge.html", "customer.html", "frames.css"]) {
  copyFileSync(join(here, "pages", page), join(out, page));
}
console.log(`payflow.js built into ${out}`);
