// Charts as inline SVG strings: no library, no build step. Each returns markup with a <title>
// on every mark (hover shows the figure) and an aria-label saying what the chart shows.
"use strict";

const Charts = (() => {
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const fmt = (n) => (Math.abs(n) >= 1000 ? n.toLocaleString("en-US") : String(Math.round(n * 10) / 10));

  // Horizontal bars: [{label, value}], longest first as given.
  function bars(items, { label = "", width = 520, color = "#2f6fd0", unit = "" } = {}) {
    if (!items.length) return `<p class="muted">Nothing to show yet.</p>`;
    const row = 26, left = 190, right = 60, height = items.length * row + 8;
    const max = Math.max(...items.map((i) => i.value), 1);
    const marks = items.map((item, n) => {
      const w = Math.max(2, ((width - left - right) * item.value) / max);
      const y = n * row + 4;
      return `<g class="bar"><title>${esc(item.label)}: ${fmt(item.value)}${unit}</title>
        <text x="${left - 8}" y="${y + 16}" text-anchor="end">${esc(item.label.length > 28 ? item.label.slice(0, 27) + "…" : item.label)}</text>
        <rect x="${left}" y="${y + 3}" width="${w}" height="${row - 8}" rx="3" fill="${item.color || color}"></rect>
        <text x="${left + w + 6}" y="${y + 16}">${fmt(item.value)}${unit}</text></g>`;
    });
    return `<svg role="img" aria-label="${esc(label)}" viewBox="0 0 ${width} ${height}" width="100%">${marks.join("")}</svg>`;
  }

  // A line over periods: [{label, value|null}]; gaps where a period has no value.
  function line(points, { label = "", width = 520, height = 220, min = -100, max = 100, color = "#2f6fd0" } = {}) {
    if (!points.length) return `<p class="muted">Nothing to show yet.</p>`;
    const left = 40, bottom = 28, top = 10, inner = width - left - 10, tall = height - top - bottom;
    const x = (n) => left + (points.length === 1 ? inner / 2 : (inner * n) / (points.length - 1));
    const y = (v) => top + tall - ((v - min) / (max - min)) * tall;
    const grid = [min, (min + max) / 2, max].map((v) =>
      `<line x1="${left}" x2="${width - 10}" y1="${y(v)}" y2="${y(v)}" stroke="#dde3ea"></line>
       <text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`).join("");
    let path = "", pen = false;
    const dots = points.map((p, n) => {
      if (p.value === null || p.value === undefined) { pen = false; return ""; }
      path += `${pen ? "L" : "M"}${x(n).toFixed(1)},${y(p.value).toFixed(1)} `;
      pen = true;
      return `<circle class="point" cx="${x(n)}" cy="${y(p.value)}" r="4" fill="${color}"><title>${esc(p.label)}: ${fmt(p.value)}</title></circle>`;
    }).join("");
    const ticks = points.map((p, n) => (n % Math.ceil(points.length / 8) === 0
      ? `<text x="${x(n)}" y="${height - 8}" text-anchor="middle">${esc(p.label)}</text>` : "")).join("");
    return `<svg role="img" aria-label="${esc(label)}" viewBox="0 0 ${width} ${height}" width="100%">${grid}
      <path d="${path}" fill="none" stroke="${color}" stroke-width="2.5"></path>${dots}${ticks}</svg>`;
  }

  // Cohort heatmap: rows [{label, size, cells: [share 0..1 | null]}], columns are months since the first order.
  function heatmap(rows, { label = "", cell = 34 } = {}) {
    if (!rows.length) return `<p class="muted">Nothing to show yet.</p>`;
    const columns = Math.max(...rows.map((r) => r.cells.length));
    const left = 120, top = 24, width = left + columns * cell + 10, height = top + rows.length * cell + 6;
    const shade = (s) => `rgba(47, 111, 208, ${(0.08 + 0.92 * s).toFixed(3)})`;
    const head = Array.from({ length: columns }, (_, n) =>
      `<text x="${left + n * cell + cell / 2}" y="${top - 8}" text-anchor="middle">${n}</text>`).join("");
    const body = rows.map((r, i) => {
      const y = top + i * cell;
      const cells = r.cells.map((s, n) => (s === null ? "" :
        `<g class="cell"><title>${esc(r.label)} cohort, month ${n}: ${Math.round(s * 100)}% of ${r.size}</title>
         <rect x="${left + n * cell}" y="${y}" width="${cell - 2}" height="${cell - 2}" fill="${shade(s)}"></rect>
         <text x="${left + n * cell + cell / 2 - 1}" y="${y + cell / 2 + 3}" text-anchor="middle"
               style="fill:${s > 0.5 ? "#fff" : "#1d2733"}">${Math.round(s * 100)}</text></g>`)).join("");
      return `<text x="${left - 8}" y="${y + cell / 2 + 3}" text-anchor="end">${esc(r.label)} (${r.size})</text>${cells}`;
    }).join("");
    return `<svg role="img" aria-label="${esc(label)}" viewBox="0 0 ${width} ${height}" width="100%"
      style="max-width:${width}px">${head}${body}</svg>`;
  }

  return { bars, line, heatmap, esc, fmt };
})();
