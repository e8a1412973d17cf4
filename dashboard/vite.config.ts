// The build writes fixed file names (app.js, app.css) into the Chalice package, where
// chalicelib/api/dashboard.py serves them by name: no manifest to read at run time, and the
// shell page (public/index.html, copied as it is) can name them.
import { defineConfig } from "vite";

export default defineConfig({
  publicDir: "public",
  build: {
    outDir: "../chalicelib/static/dashboard",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    modulePreload: false,
    rollupOptions: {
      input: "src/main.ts",
      output: {
        entryFileNames: "app.js",
        chunkFileNames: "app-[name].js",
        assetFileNames: "app[extname]",
      },
    },
  },
});
