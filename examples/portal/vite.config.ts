// The portal on one origin with the API: `/graphql` is passed on to Tenure (TENURE_API, by
// default a local `tenure serve`), both by the dev server and by `vite preview`.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const api = (process.env.TENURE_API ?? "http://127.0.0.1:8000").replace(/\/$/, "");
const proxy = { "/graphql": { target: api, changeOrigin: true } };

export default defineConfig({
  plugins: [react()],
  server: { host: "127.0.0.1", port: 5173, strictPort: true, proxy },
  preview: { host: "127.0.0.1", port: 4173, strictPort: true, proxy },
  build: {
    // The chart library changes less often than the portal: its own file stays cached.
    rollupOptions: { output: { manualChunks: { charts: ["recharts"] } } },
  },
});
