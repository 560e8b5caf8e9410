// Bundles the studio into dist/ (served by the node at /studio): one script, one stylesheet, the page.
// Everything the page needs is in dist/, so a node that is offline serves a working app.
import { build } from "esbuild";
import { cpSync, mkdirSync, rmSync } from "node:fs";

const here = new URL(".", import.meta.url).pathname;
rmSync(here + "dist", { recursive: true, force: true });
mkdirSync(here + "dist");
await build({
  entryPoints: { app: here + "src/main.js" },
  bundle: true,
  minify: true,
  sourcemap: false,
  format: "esm",
  target: ["chrome110", "firefox110", "safari16"],
  outdir: here + "dist",
  legalComments: "linked",
  loader: { ".css": "css" },
  logLevel: "warning",
});
cpSync(here + "src/index.html", here + "dist/index.html");
