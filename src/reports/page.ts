/**
 * The one HTML page shell of every page the harness writes (index.html of a run, the merged site's index.html)
 * and the one escaper for HTML, SVG and XML text. Everything is inline (CSS, SVG charts), there is no script,
 * and a Content-Security-Policy forbids every fetch, so a page works offline, from a CI artifact or an e-mail
 * attachment, and a token label cannot make it load anything.
 */

/**
 * The only way text gets into a page, an SVG chart or an XML file: the five characters markup gives a meaning
 * to, as entities (&#39; rather than &apos;, which HTML 4 lacks), so it is safe in an attribute too. Objects
 * are shown as their JSON.
 */
export function esc(value: unknown): string {
  const s = typeof value === 'string' ? value : value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return escText(s).replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Text outside any tag or attribute (a Markdown cell): only the characters that start a tag or an entity. */
export function escText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const CSS = `
:root{--fg:#1b1f24;--muted:#636c76;--bg:#fff;--line:#d0d7de;--head:#f6f8fa;--pass:#1a7f37;--fail:#cf222e;--skip:#6e7781;--unsup:#9a6700;--crash:#8250df}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;padding:1rem 1.5rem;max-width:1500px}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.25rem;margin:1.6rem 0 .5rem;border-bottom:1px solid var(--line);padding-bottom:.2rem}
h2 small{font-weight:normal;color:var(--muted);font-size:.9rem}h3{font-size:1rem;margin:.8rem 0 .3rem;display:inline-block}h4{font-size:.9rem;margin:.7rem 0 .2rem}
table{border-collapse:collapse;margin:.3rem 0 .8rem;font-size:13px}th,td{border:1px solid var(--line);padding:.25rem .5rem;text-align:left;vertical-align:top}
thead th{background:var(--head)}.scroll{overflow-x:auto}
.matrix td.yes,.matrix td.no,.matrix td.na,.matrix td.hidden{text-align:center;font-weight:bold}.hidden{color:var(--unsup)}.yes{color:var(--pass)}.no{color:var(--fail)}.na{color:var(--muted)}
.matrix td.status{max-width:18rem}.matrix thead th{font-size:12px}.nw{white-space:nowrap}
.pill{display:inline-block;border-radius:1em;padding:0 .55em;font-size:12px;font-weight:600;color:#fff;background:var(--skip);white-space:nowrap}
.s-pass,.s-ran{background:var(--pass)}.s-fail,.s-error{background:var(--fail)}.s-unsupported{background:var(--unsup)}.s-crash,.s-timeout{background:var(--crash)}
.s-skip,.s-unavailable{background:var(--skip)}
.muted{color:var(--muted)}.reason,.date{color:var(--muted);font-size:12px}code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
dl{display:grid;grid-template-columns:max-content auto;gap:.1rem 1rem;margin:.3rem 0}dt{font-weight:600}dd{margin:0}
summary{cursor:pointer}section.sub{margin-left:.2rem}ul.findings{padding-left:1.2rem}
nav{font-size:13px}nav a{margin-right:.7rem}
.summary{display:flex;gap:.4rem;flex-wrap:wrap;align-items:center}
.v-suitable{color:var(--pass);font-weight:600}.v-notsuitable{color:var(--fail);font-weight:600}.v-nottested{color:var(--skip)}
td.cell a{text-decoration:none}td.cell .date{display:block}
.t-slower{color:var(--fail);font-weight:600}.t-faster{color:var(--pass);font-weight:600}.t-unknown{color:var(--skip)}
svg{max-width:100%;height:auto;vertical-align:middle}figure{margin:.5rem 0}
@media print{details{display:block}summary{list-style:none}}
`;

/** A whole page: `title` is text (escaped here), `body` is HTML the caller built with esc(). */
export function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style></head>
<body>${body}</body></html>
`;
}
