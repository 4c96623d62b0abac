/**
 * Human-readable output: a text summary for terminals and a self-contained HTML report that draws
 * each client's operations on a time line.
 * @module
 */
import type { CheckResult, PartitionResult } from './check.js';
import { CompactHistory } from './compact.js';
import type { History, Operation } from './history.js';
import type { Model } from './model.js';
import { show } from './model.js';

/** Options of {@link formatText}. */
export interface TextOptions {
  /** Most operations of the longest prefix to print (the last ones). Default 12. */
  prefixTail?: number;
  /** Most stuck operations to print. Default 10. */
  maxStuck?: number;
}

function describe(model: Model, op: Operation): string {
  const d = model.describeOperation
    ? model.describeOperation(op.input, op.output)
    : `${show(op.input)} → ${show(op.output)}`;
  return op.status === 'info' ? `${d} (indeterminate)` : d;
}

function describeState(model: Model, s: unknown): string {
  return model.describeState ? model.describeState(s) : show(s);
}

/** Operation `i` of a history, without building every operation of a compact one. */
export function opAccessor(history: History): (i: number) => Operation {
  if (history instanceof CompactHistory && !history.isMaterialized) return (i) => history.op(i);
  const ops = history.operations;
  return (i) => ops[i] as Operation;
}

/**
 * Replays a sequence of operations from the initial state; returns the state after each one.
 * @param ops - the operations (an array, or a function from index to operation).
 */
export function replay(
  model: Model,
  ops: readonly Operation[] | ((i: number) => Operation),
  order: readonly number[],
): unknown[] {
  const at = typeof ops === 'function' ? ops : (i: number) => ops[i] as Operation;
  let state = model.init();
  const out: unknown[] = [];
  for (const i of order) {
    const op = at(i);
    const r = model.step(state, op.input, op.output);
    if (r.ok) state = r.state;
    out.push(state);
  }
  return out;
}

function where(op: Operation): string {
  return op.line === undefined ? `#${op.index}` : `line ${op.line}`;
}

function partName(p: PartitionResult): string {
  return p.key === undefined ? 'history' : `partition ${JSON.stringify(p.key)}`;
}

/** A readable multi-line summary of a result: the verdict, and for a violation, where it is stuck. */
export function formatText(name: string, result: CheckResult, options: TextOptions = {}): string {
  const tail = options.prefixTail ?? 12;
  const maxStuck = options.maxStuck ?? 10;
  const model = result.spec;
  const ops = opAccessor(result.history);
  const lines: string[] = [];
  lines.push(
    `${name}: ${result.verdict.replace('-', ' ')} (model ${result.model}, ${result.operations} ops, ${result.dropped.length} dropped, ${result.partitions.length} partition${result.partitions.length === 1 ? '' : 's'}, ${result.ms.toFixed(1)} ms)`,
  );
  const skipped = result.partitions.filter(
    (p) => p.verdict === 'unknown' && p.reason?.startsWith('not finished'),
  );
  for (const p of result.partitions) {
    if (p.verdict === 'linearizable' || skipped.includes(p)) continue;
    if (p.verdict === 'unknown') {
      const got = p.longestPrefix?.length ?? 0;
      lines.push(
        `  ${partName(p)}: unknown: ${p.reason ?? ''}${got > 0 ? ` (longest linearizable prefix found: ${got} of ${p.operations.length} ops)` : ''}`,
      );
      continue;
    }
    const prefix = p.longestPrefix ?? [];
    const states = replay(model, ops, prefix);
    lines.push(`  ${partName(p)}: NOT linearizable (${p.operations.length} ops)`);
    // a fast-path violation: the prefix is the search over the minimal sub-history alone
    const of =
      p.method === 'fast'
        ? `${p.minimal?.length ?? 0} ops of the minimal sub-history below`
        : `${p.operations.length} ops`;
    lines.push(
      `    longest linearizable prefix: ${prefix.length} of ${of}${prefix.length > tail ? ` (last ${tail} shown)` : ''}`,
    );
    for (let k = Math.max(0, prefix.length - tail); k < prefix.length; k++) {
      const op = ops(prefix[k] as number);
      lines.push(
        `      ${String(k + 1).padStart(4)}. [p${op.process}] ${describe(model, op)}   ⇒ ${describeState(model, states[k])}   (${where(op)})`,
      );
    }
    const state = prefix.length === 0 ? model.init() : states[states.length - 1];
    lines.push(`    from state ${describeState(model, state)}, none of these can go next:`);
    const stuck = p.stuck ?? [];
    for (const i of stuck.slice(0, maxStuck)) {
      const op = ops(i);
      const legal = model.step(state, op.input, op.output).ok;
      lines.push(
        `      ✗ [p${op.process}] ${describe(model, op)}   (${where(op)}; ${legal ? 'legal here but leads to a dead end' : 'illegal in this state'})`,
      );
    }
    if (stuck.length > maxStuck) lines.push(`      … and ${stuck.length - maxStuck} more`);
    if (p.minimal !== undefined) {
      const relaxed = new Set(p.relaxed ?? []);
      lines.push(`    minimal failing sub-history (${p.why ?? `${p.minimal.length} operations`}):`);
      for (const i of p.minimal) {
        const op = ops(i);
        const ret = relaxed.has(i) || !Number.isFinite(op.ret) ? '…' : String(op.ret);
        lines.push(
          `      [p${op.process}] ${describe(model, relaxed.has(i) ? { ...op, output: undefined, status: 'info' } : op)}   [${op.call}, ${ret}]   (${where(op)})`,
        );
      }
    }
  }
  if (result.budgetExhausted) {
    lines.push(
      `  partial result: ${result.partitionsFinished} of ${result.partitions.length} partitions finished within the time budget`,
    );
  }
  if (skipped.length > 0) {
    lines.push(
      `  ${skipped.length} other partition${skipped.length === 1 ? '' : 's'} not finished: the verdict was already known (use --all to finish them)`,
    );
  }
  return lines.join('\n');
}

/** Options of {@link renderHtml}. */
export interface HtmlOptions {
  /**
   * Most operations drawn per partition: a window around the violation (the minimal failing
   * sub-history, the stuck operations and the end of the longest prefix), or the first ones of a
   * linearizable partition; the others are counted, not drawn. Default 400.
   */
  windowOps?: number;
  /** Most partitions listed per file (violations and unknown ones first). Default 200. */
  maxPartitions?: number;
  /** Longest description of an operation or a state, in characters. Default 200. */
  maxText?: number;
}

/** Defaults of {@link HtmlOptions}: with them a report stays well under 10 MB for any history. */
export const DEFAULT_HTML_OPTIONS: Required<HtmlOptions> = {
  windowOps: 400,
  maxPartitions: 200,
  maxText: 200,
};

/** One history's data as embedded in the HTML report. */
interface ReportFile {
  name: string;
  verdict: string;
  model: string;
  ms: number;
  /** Operations drawn somewhere in the report (windows and minimal sub-histories). */
  ops: { i: number; p: string; c: number; r: number | null; d: string; s: string; l: number | null }[];
  dropped: number;
  operations: number;
  /** Partitions not listed (beyond `maxPartitions`), and their operations. */
  hidden: { partitions: number; ops: number; verdicts: Record<string, number> };
  parts: {
    key: string | null;
    verdict: string;
    reason: string | null;
    method: string | null;
    /** The window: operations drawn. */
    ops: number[];
    /** Operations of the partition in all. */
    total: number;
    /** Operations of the partition called before / after the window. */
    before: number;
    after: number;
    /** (Partial) linearization restricted to the window, its positions in the whole one, states. */
    order: number[];
    pos: number[];
    states: string[];
    /** Length of the whole (partial) linearization. */
    orderLength: number;
    stuck: number[];
    minimal: number[];
    relaxed: number[];
    why: string | null;
  }[];
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}

/** The operations of a partition to draw: at most `w`, around the focus when there is one. */
function windowOf(all: readonly number[], focus: readonly number[], w: number): number[] {
  if (all.length <= w) return [...all];
  if (focus.length === 0) return all.slice(0, w);
  const posOf = new Map(all.map((i, k) => [i, k]));
  const ks = focus
    .map((i) => posOf.get(i))
    .filter((k): k is number => k !== undefined)
    .sort((a, b) => a - b);
  const lo = ks[0] ?? 0;
  const hi = ks[ks.length - 1] ?? 0;
  if (hi - lo + 1 <= w) {
    const extra = w - (hi - lo + 1);
    let start = Math.max(0, lo - Math.ceil(extra / 2));
    const end = Math.min(all.length, start + w);
    start = Math.max(0, end - w);
    return all.slice(start, end);
  }
  // a focus wider than the window: each focus operation with a few neighbours
  const keep = new Set<number>();
  const around = Math.max(0, Math.floor((w - ks.length) / (2 * ks.length)));
  for (const k of ks)
    for (let j = Math.max(0, k - around); j <= Math.min(all.length - 1, k + around); j++) keep.add(j);
  return [...keep].sort((a, b) => a - b).map((k) => all[k] as number);
}

function toReport(name: string, result: CheckResult, o: Required<HtmlOptions>): ReportFile {
  const model = result.spec;
  const at = opAccessor(result.history);
  const drawn = new Set<number>();
  const listed = result.partitions.slice(0, o.maxPartitions);
  const rest = result.partitions.slice(o.maxPartitions);
  const verdicts: Record<string, number> = {};
  for (const p of rest) verdicts[p.verdict] = (verdicts[p.verdict] ?? 0) + 1;
  const parts = listed.map((p) => {
    const full = p.linearization ?? p.longestPrefix ?? [];
    const stuck = [...(p.stuck ?? [])];
    const minimal = [...(p.minimal ?? [])];
    const focus = p.verdict === 'linearizable' ? [] : [...minimal, ...stuck, ...full.slice(-20)];
    const win = windowOf(p.operations, focus, o.windowOps);
    const inWin = new Set(win);
    const first = p.operations.indexOf(win[0] as number);
    const lastK = p.operations.indexOf(win[win.length - 1] as number);
    const states = replay(model, at, full);
    const order: number[] = [];
    const pos: number[] = [];
    const st: string[] = [];
    full.forEach((i, k) => {
      if (!inWin.has(i)) return;
      order.push(i);
      pos.push(k);
      st.push(clip(describeState(model, states[k]), o.maxText));
    });
    for (const i of win) drawn.add(i);
    for (const i of minimal) drawn.add(i);
    for (const i of stuck) drawn.add(i);
    return {
      key: p.key ?? null,
      verdict: p.verdict,
      reason: p.reason ?? null,
      method: p.method ?? null,
      ops: win,
      total: p.operations.length,
      before: Math.max(0, first),
      after: Math.max(0, p.operations.length - lastK - 1),
      order,
      pos,
      states: st,
      orderLength: full.length,
      stuck,
      minimal,
      relaxed: [...(p.relaxed ?? [])],
      why: p.why ?? null,
    };
  });
  const ops = [...drawn]
    .sort((a, b) => a - b)
    .map((i) => {
      const op = at(i);
      return {
        i: op.index,
        p: clip(String(op.process), 40),
        c: op.call,
        r: Number.isFinite(op.ret) ? op.ret : null,
        d: clip(describe(model, op), o.maxText),
        s: op.status,
        l: op.line ?? null,
      };
    });
  return {
    name,
    verdict: result.verdict,
    model: result.model,
    ms: result.ms,
    ops,
    dropped: result.dropped.length,
    operations: result.operations,
    hidden: { partitions: rest.length, ops: rest.reduce((n, p) => n + p.operations.length, 0), verdicts },
    parts,
  };
}

/**
 * A self-contained HTML page (no external resources) for one or more checked histories. Each
 * partition is drawn as a time line with one row per client; operations in the (partial)
 * linearization carry their position and the state after them, stuck operations are red, and
 * indeterminate ones fade out to the right. Times are compressed to event order.
 */
export function renderHtml(
  files: readonly { name: string; result: CheckResult }[],
  options: HtmlOptions = {},
): string {
  const o = { ...DEFAULT_HTML_OPTIONS, ...options };
  const data = JSON.stringify(files.map((f) => toReport(f.name, f.result, o))).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>paxkv-check report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
:root{--ok:#1a7f37;--bad:#cf222e;--unk:#9a6700;--lin:#2da44e;--bar:#8c959f;--bg:#fff;--fg:#1f2328;--mut:#656d76}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,Segoe UI,sans-serif;color:var(--fg);background:var(--bg);display:flex;height:100vh}
nav{width:290px;border-right:1px solid #d0d7de;overflow:auto;padding:8px;flex:none}
main{flex:1;overflow:auto;padding:12px 16px}
h1{font-size:16px;margin:4px 0 8px}h2{font-size:15px;margin:0 0 4px}
.f{margin-bottom:10px}.fn{font-weight:600;word-break:break-all}
.p{display:block;padding:2px 6px;margin:1px 0;border-radius:4px;cursor:pointer;color:inherit;text-decoration:none}
.p:hover{background:#f6f8fa}.p.sel{background:#ddf4ff}
.v{display:inline-block;font-size:11px;font-weight:600;padding:0 6px;border-radius:10px;color:#fff;margin-left:4px}
.v.linearizable{background:var(--ok)}.v.not-linearizable{background:var(--bad)}.v.unknown{background:var(--unk)}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:14px;height:10px;border-radius:2px;vertical-align:middle;margin-right:4px}
svg text{font:11px system-ui,sans-serif}
#tip{position:fixed;pointer-events:none;background:#1f2328;color:#fff;padding:6px 8px;border-radius:6px;font-size:12px;max-width:520px;display:none;white-space:pre-wrap}
table{border-collapse:collapse;margin-top:10px;font-size:12px}td,th{border-bottom:1px solid #eaeef2;padding:2px 8px;text-align:left;vertical-align:top}
.stuck td{color:var(--bad)}.mut{color:var(--mut)}
</style></head><body>
<nav><h1>paxkv-check</h1><div id="nav"></div></nav>
<main><div id="head"></div><div class="legend">
<span><i class="sw" style="background:var(--lin)"></i>linearized (number = position)</span>
<span><i class="sw" style="background:var(--bad)"></i>could not be placed</span>
<span><i class="sw" style="background:var(--bar)"></i>not reached</span>
<span><i class="sw" style="background:linear-gradient(90deg,var(--bar),#fff)"></i>indeterminate (no return)</span></div>
<div id="chart"></div><div id="table"></div></main><div id="tip"></div>
<script>
const DATA=${data};
const $=id=>document.getElementById(id);
const esc=s=>String(s).replace(/[&<>"]/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"})[c]);
let cur=null;
const kname=p=>p.key===null?'whole history':'key '+esc(JSON.stringify(p.key));
function nav(){let h="";DATA.forEach((f,fi)=>{h+='<div class="f"><div class="fn">'+esc(f.name)+'<span class="v '+f.verdict+'">'+f.verdict+'</span></div><div class="mut">'+esc(f.model)+', '+f.operations+' ops, '+f.ms.toFixed(1)+' ms</div>';
f.parts.forEach((p,pi)=>{h+='<a class="p" data-f="'+fi+'" data-p="'+pi+'">'+kname(p)+' <span class="v '+p.verdict+'">'+p.verdict+'</span> <span class="mut">'+p.total+' ops</span></a>'});
if(f.hidden.partitions)h+='<div class="mut">… and '+f.hidden.partitions+' more partitions ('+f.hidden.ops+' ops: '+Object.entries(f.hidden.verdicts).map(e=>e[1]+' '+e[0]).join(', ')+'), not listed</div>';
if(!f.parts.length)h+='<div class="mut">empty history</div>';h+='</div>'});$("nav").innerHTML=h;
document.querySelectorAll(".p").forEach(a=>a.onclick=()=>{const f=+a.dataset.f,q=+a.dataset.p;show(f,q,DATA[f].parts[q].minimal.length>0)});}
function show(fi,pi,mini){cur=[fi,pi];document.querySelectorAll(".p").forEach(a=>a.classList.toggle("sel",+a.dataset.f===fi&&+a.dataset.p===pi));
const f=DATA[fi],p=f.parts[pi];const byI=new Map(f.ops.map(o=>[o.i,o]));const ops=(mini?p.minimal:p.ops).map(i=>byI.get(i));
const pos=new Map(),st=new Map();p.order.forEach((i,k)=>{pos.set(i,p.pos[k]);st.set(i,p.states[k])});
const stuck=new Set(p.stuck),relaxed=new Set(mini?p.relaxed:[]),inMin=new Set(p.minimal);
const times=[...new Set(ops.flatMap(o=>o.r===null||relaxed.has(o.i)?[o.c]:[o.c,o.r]))].sort((a,b)=>a-b);const rank=new Map(times.map((t,k)=>[t,k]));
const procs=[...new Set(ops.map(o=>o.p))].sort((a,b)=>(+a-+b)||a.localeCompare(b));const row=new Map(procs.map((q,k)=>[q,k]));
const U=Math.max(14,Math.min(60,1400/Math.max(1,times.length))),L=70,R=40,RH=26,W=L+R+U*(times.length+1),Hh=24+RH*procs.length;
let s='<svg width="'+W+'" height="'+Hh+'"><defs><linearGradient id="fade"><stop offset="0" stop-color="#8c959f"/><stop offset="1" stop-color="#8c959f" stop-opacity="0"/></linearGradient></defs>';
procs.forEach((q,k)=>{const y=20+k*RH;s+='<text x="4" y="'+(y+14)+'">p'+esc(q)+'</text><line x1="'+L+'" x2="'+(W-R)+'" y1="'+(y+RH/2)+'" y2="'+(y+RH/2)+'" stroke="#eaeef2"/>'});
ops.forEach(o=>{const open=o.r===null||relaxed.has(o.i);const y=22+row.get(o.p)*RH,x=L+rank.get(o.c)*U,x2=open?W-R:L+rank.get(o.r)*U+U*0.8,w=Math.max(6,x2-x);
const k=pos.get(o.i),fill=stuck.has(o.i)?"#cf222e":k!==undefined?"#2da44e":mini?"#0969da":open?"url(#fade)":"#8c959f";
s+='<g class="op" data-i="'+o.i+'"><rect x="'+x+'" y="'+y+'" width="'+w+'" height="'+(RH-6)+'" rx="3" fill="'+fill+'"'+(open?' stroke="#8c959f" stroke-dasharray="3 2"':!mini&&inMin.has(o.i)?' stroke="#0969da" stroke-width="2"':'')+'/>';
s+='<text x="'+(x+3)+'" y="'+(y+14)+'" fill="#fff">'+(k!==undefined?(k+1)+' ':'')+esc(o.d.length*6>w-20?'':o.d)+'</text></g>'});
s+='</svg>';
let head='<h2>'+esc(f.name)+' · '+kname(p)+' <span class="v '+p.verdict+'">'+p.verdict+'</span></h2>';
if(p.verdict==="not-linearizable"){const of=p.method==="fast"?p.minimal.length+' operations of the minimal sub-history':p.total+' operations';
head+='<p>The longest linearizable prefix found has <b>'+p.orderLength+'</b> of '+of+'. After it the state is <code>'+esc(p.states[p.states.length-1]??"(initial)")+'</code>, and none of the red operations can be placed next.</p>'}
else if(p.verdict==="unknown")head+='<p>'+esc(p.reason)+(p.orderLength?' (longest linearizable prefix found: '+p.orderLength+' of '+p.total+' operations)':'')+'</p>';
else head+='<p>One valid linearization is numbered on the bars.</p>';
if(p.minimal.length)head+='<p><b>Minimal failing sub-history: '+p.minimal.length+' operations</b> ('+esc(p.why??"")+'), outlined in blue. <a href="#" id="tm">'+(mini?'show the '+p.ops.length+' operations around it':'show it alone')+'</a></p>';
if(!mini&&(p.before||p.after))head+='<p class="mut">Showing '+p.ops.length+' of '+p.total+' operations: '+p.before+' called before and '+p.after+' after this window are not drawn.</p>';
$("head").innerHTML=head;$("chart").innerHTML=s;const tm=$("tm");if(tm)tm.onclick=e=>{e.preventDefault();show(fi,pi,!mini)};
let t='<table><tr><th>#</th><th>client</th><th>operation</th><th>state after</th><th>source</th></tr>';
if(mini)ops.forEach(o=>{const k=pos.get(o.i);t+='<tr'+(stuck.has(o.i)?' class="stuck"':'')+'><td>'+(k!==undefined?k+1:stuck.has(o.i)?'✗':'·')+'</td><td>p'+esc(o.p)+'</td><td>'+esc(o.d)+(relaxed.has(o.i)?' (indeterminate here)':'')+'</td><td>'+(k!==undefined?'<code>'+esc(st.get(o.i))+'</code>':stuck.has(o.i)?'cannot go next':'')+'</td><td class="mut">'+(o.l===null?'':'line '+o.l)+'</td></tr>'});
else{p.order.forEach((i,k)=>{const o=byI.get(i);t+='<tr><td>'+(p.pos[k]+1)+'</td><td>p'+esc(o.p)+'</td><td>'+esc(o.d)+'</td><td><code>'+esc(p.states[k])+'</code></td><td class="mut">'+(o.l===null?'':'line '+o.l)+'</td></tr>'});
p.stuck.forEach(i=>{const o=byI.get(i);if(!o)return;t+='<tr class="stuck"><td>✗</td><td>p'+esc(o.p)+'</td><td>'+esc(o.d)+'</td><td>cannot go next</td><td>'+(o.l===null?'':'line '+o.l)+'</td></tr>'})}
$("table").innerHTML=t+'</table>';
document.querySelectorAll(".op").forEach(g=>{const o=byI.get(+g.dataset.i);g.onmousemove=e=>{const k=pos.get(o.i);const tp=$("tip");tp.style.display="block";tp.style.left=(e.clientX+12)+"px";tp.style.top=(e.clientY+12)+"px";
tp.textContent="p"+o.p+": "+o.d+"\\n"+(o.l===null?"":"line "+o.l+"\\n")+(k!==undefined?"linearized #"+(k+1)+", state after: "+st.get(o.i):stuck.has(o.i)?"could not be placed after the prefix":inMin.has(o.i)?"in the minimal failing sub-history":"not placed")};g.onmouseleave=()=>{$("tip").style.display="none"}});}
nav();
{let fi=DATA.findIndex(f=>f.parts.some(p=>p.verdict!=="linearizable"));if(fi<0)fi=0;if(DATA[fi]&&DATA[fi].parts.length){const pi=Math.max(0,DATA[fi].parts.findIndex(p=>p.verdict!=="linearizable"));show(fi,pi,DATA[fi].parts[pi].minimal.length>0)}}
</script></body></html>
`;
}
