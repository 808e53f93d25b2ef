/**
 * A stacked bar chart in plain SVG (one bar per day, one colour per series), with the
 * same numbers as a table for screen readers and for copying.
 */
export interface Series {
  name: string;
  /** Value by x label. */
  values: Record<string, number>;
}

/** Series colours; `.swatch-N` in styles.css repeats them for the legend (no inline styles: the page's CSP forbids them). */
const palette = ["#1f6feb", "#bf3989", "#1a7f37", "#9a6700", "#8250df", "#cf222e", "#0a7f8f", "#57606a"];

export function StackedBarChart({ title, xs, series, format }: { title: string; xs: string[]; series: Series[]; format: (n: number) => string }) {
  const width = 640;
  const height = 200;
  const pad = { left: 56, right: 8, top: 8, bottom: 28 };
  const totals = xs.map((x) => series.reduce((s, se) => s + (se.values[x] ?? 0), 0));
  const max = Math.max(0, ...totals) || 1;
  const band = (width - pad.left - pad.right) / Math.max(1, xs.length);
  const barWidth = Math.max(2, Math.min(40, band * 0.7));
  const y = (v: number) => pad.top + (height - pad.top - pad.bottom) * (1 - v / max);
  const id = title.toLowerCase().replace(/[^a-z0-9]+/g, "-");
  return (
    <figure class="chart" data-testid={`chart-${id}`}>
      <figcaption>{title}</figcaption>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby={`${id}-desc`} preserveAspectRatio="xMinYMin meet">
        <desc id={`${id}-desc`}>
          {title}: {series.length} series over {xs.length} days; the table below has the numbers.
        </desc>
        <line x1={pad.left} x2={width - pad.right} y1={y(0)} y2={y(0)} class="axis" />
        <text x={pad.left - 6} y={y(max) + 4} text-anchor="end" class="tick">
          {format(max)}
        </text>
        <text x={pad.left - 6} y={y(0)} text-anchor="end" class="tick">
          0
        </text>
        {xs.map((x, i) => {
          let base = 0;
          const cx = pad.left + band * i + band / 2;
          return (
            <g key={x}>
              {series.map((se, si) => {
                const v = se.values[x] ?? 0;
                if (!v) return null;
                const top = y(base + v);
                const h = y(base) - top;
                base += v;
                return (
                  <rect key={se.name} x={cx - barWidth / 2} y={top} width={barWidth} height={Math.max(1, h)} fill={palette[si % palette.length]}>
                    <title>{`${x} · ${se.name}: ${format(v)}`}</title>
                  </rect>
                );
              })}
              {(xs.length <= 10 || i % Math.ceil(xs.length / 8) === 0) && (
                <text x={cx} y={height - 10} text-anchor="middle" class="tick">
                  {x.slice(5)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <ul class="legend">
        {series.map((se, si) => (
          <li key={se.name}>
            <span class={`swatch swatch-${si % palette.length}`} aria-hidden="true" />
            {se.name}
          </li>
        ))}
      </ul>
      <details>
        <summary>Show the numbers</summary>
        <table class="compact">
          <thead>
            <tr>
              <th scope="col">day</th>
              {series.map((se) => (
                <th key={se.name} scope="col">
                  {se.name}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {xs.map((x) => (
              <tr key={x}>
                <th scope="row">{x}</th>
                {series.map((se) => (
                  <td key={se.name}>{format(se.values[x] ?? 0)}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
