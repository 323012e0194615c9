// A small SVG bar chart for the benchmark results, readable at a glance:
// one panel per metric, one horizontal bar per path with its value at the
// end, and a dashed line at the reference path's value (kernel VXLAN) so
// "how far from the kernel" is seen without reading numbers. Plain SVG 1.1
// text, no dependencies; opens in any browser.

export interface Bar {
  label: string
  /** NaN or undefined: not measured (drawn as "n/a") */
  value: number | undefined
  kind: 'ceiling' | 'reference' | 'weft' | 'floor'
  /** a few words after the value, e.g. why it is only a lower bound */
  note?: string
}

export interface Panel {
  title: string
  unit: string
  bars: Bar[]
  /** value of the reference line; undefined: none */
  reference?: number
  referenceLabel?: string
  /** false: the reference line is a target, not a path, and bars get no "(0.42x)" ratio to it */
  ratios?: boolean
}

export interface Chart {
  title: string
  subtitle: string
  panels: Panel[]
}

const WIDTH = 760
const LABEL_W = 130
const VALUE_W = 150
const BAR_H = 20
const GAP = 6
const PANEL_HEAD = 56
const PANEL_GAP = 18
const COLOURS: Record<Bar['kind'], string> = { ceiling: '#9e9e9e', reference: '#1f5fa8', weft: '#e07b00', floor: '#8c6bb1' }

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function fmt (x: number): string {
  if (x >= 100) return x.toFixed(0)
  if (x >= 10) return x.toFixed(1)
  return x.toFixed(2)
}

export function renderChart (c: Chart): string {
  const plotW = WIDTH - LABEL_W - VALUE_W - 20
  const out: string[] = []
  let y = 58
  for (const p of c.panels) {
    const values = p.bars.map((b) => b.value).filter((v): v is number => v !== undefined && Number.isFinite(v))
    const max = Math.max(1e-9, ...values, p.reference ?? 0)
    const x0 = LABEL_W + 10
    const scale = plotW / max
    out.push(`<text x="10" y="${y + 18}" class="panel">${esc(p.title)}</text>`)
    out.push(`<text x="${WIDTH - 10}" y="${y + 18}" class="unit" text-anchor="end">${esc(p.unit)}</text>`)
    let by = y + PANEL_HEAD - 12
    const top = by
    // the reference line first: bars and values are drawn over it
    if (p.reference !== undefined && Number.isFinite(p.reference) && p.reference > 0) {
      const rx = (x0 + p.reference * scale).toFixed(1)
      const bottom = top + p.bars.length * (BAR_H + GAP) - GAP + 4
      out.push(`<line x1="${rx}" y1="${top - 6}" x2="${rx}" y2="${bottom}" class="ref"/>`)
      out.push(`<text x="${rx}" y="${top - 9}" class="reflabel" text-anchor="middle">${esc(p.referenceLabel ?? 'reference')}</text>`)
    }
    for (const b of p.bars) {
      out.push(`<text x="${LABEL_W}" y="${by + BAR_H - 6}" class="label" text-anchor="end">${esc(b.label)}</text>`)
      if (b.value === undefined || !Number.isFinite(b.value)) {
        out.push(`<text x="${x0 + 4}" y="${by + BAR_H - 6}" class="value">n/a</text>`)
      } else {
        const w = Math.max(1, b.value * scale)
        const ratio = p.ratios !== false && p.reference !== undefined && p.reference > 0 && b.kind !== 'reference' ? `  (${(b.value / p.reference).toFixed(2)}x)` : ''
        out.push(`<rect x="${x0}" y="${by}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${COLOURS[b.kind]}"/>`)
        out.push(`<text x="${(x0 + w + 6).toFixed(1)}" y="${by + BAR_H - 6}" class="value">${fmt(b.value)}${ratio}${b.note !== undefined ? `  ${esc(b.note)}` : ''}</text>`)
      }
      by += BAR_H + GAP
    }
    out.push(`<line x1="${x0}" y1="${top - 2}" x2="${x0}" y2="${by - GAP + 2}" class="axis"/>`)
    y = by + PANEL_GAP
  }
  const height = y + 24
  // only the kinds drawn (a run of some --paths leaves others out)
  const drawn = new Set(c.panels.flatMap((p) => p.bars.map((b) => b.kind)))
  // the references drawn: kernel VXLAN, and wireguard-go where the WireGuard head to head is
  const references = [...new Set(c.panels.flatMap((p) => p.bars.filter((b) => b.kind === 'reference').map((b) => b.label)))]
  const legend = (['ceiling', 'reference', 'weft', 'floor'] as const).filter((k) => drawn.has(k)).map((k, i) => {
    const lx = 10 + i * 185
    const name = { ceiling: 'plain veth (ceiling)', reference: references.length === 1 && references[0] === 'kernel VXLAN' ? 'kernel VXLAN (flannel)' : references.join(', '), weft: 'weft backends', floor: 'C forwarder (TUN floor)' }[k]
    return `<rect x="${lx}" y="${height - 22}" width="12" height="12" fill="${COLOURS[k]}"/><text x="${lx + 18}" y="${height - 12}" class="label">${name}</text>`
  }).join('')
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
    '<style>.title{font-size:16px;font-weight:bold}.sub{font-size:11px;fill:#555}.panel{font-size:13px;font-weight:bold}.unit{font-size:11px;fill:#555}' +
      '.label{font-size:12px}.value{font-size:11px;fill:#222;paint-order:stroke;stroke:#fff;stroke-width:3px}.ref{stroke:#1f5fa8;stroke-width:1.5;stroke-dasharray:5,3}.reflabel{font-size:10px;fill:#1f5fa8}.axis{stroke:#444;stroke-width:1}</style>',
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="22" class="title">${esc(c.title)}</text>`,
    `<text x="10" y="40" class="sub">${esc(c.subtitle)}</text>`,
    ...out,
    legend,
    '</svg>',
    ''
  ].join('\n')
}
