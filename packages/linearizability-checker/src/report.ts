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
    lines.push(
      `    longest linearizable prefix: ${prefix.length} of ${p.operations.length} ops${prefix.length > tail ? ` (last ${tail} shown)` : ''}`,
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

/** One history's data as embedded in the HTML report. */
interface ReportFile {
  name: string;
  verdict: string;
  model: string;
  ms: number;
  ops: { i: number; p: string; c: number; r: number | null; d: string; s: string; l: number | null }[];
  dropped: number[];
  parts: {
    key: string | null;
    verdict: string;
    reason: string | null;
    ops: number[];
    order: number[];
    states: string[];
    stuck: number[];
  }[];
}

function toReport(name: string, result: CheckResult): ReportFile {
  const model = result.spec;
  const ops = result.history.operations;
  return {
    name,
    verdict: result.verdict,
    model: result.model,
    ms: result.ms,
    ops: ops.map((op) => ({
      i: op.index,
      p: String(op.process),
      c: op.call,
      r: Number.isFinite(op.ret) ? op.ret : null,
      d: describe(model, op),
      s: op.status,
      l: op.line ?? null,
    })),
    dropped: [...result.dropped],
    parts: result.partitions.map((p) => {
      const order = [...(p.linearization ?? p.longestPrefix ?? [])];
      return {
        key: p.key ?? null,
        verdict: p.verdict,
        reason: p.reason ?? null,
        ops: [...p.operations],
        order,
        states: replay(model, ops, order).map((s) => describeState(model, s)),
        stuck: [...(p.stuck ?? [])],
      };
    }),
  };
}

/**
 * A self-contained HTML page (no external resources) for one or more checked histories. Each
 * partition is drawn as a time line with one row per client; operations in the (partial)
 * linearization carry their position and the state after them, stuck operations are red, and
 * indeterminate ones fade out to the right. Times are compressed to event order.
 */
export function renderHtml(files: readonly { name: string; result: CheckResult }[]): string {
  const data = JSON.stringify(files.map((f) => toReport(f.name, f.result))).replace(/</g, '\\u003c');
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
function nav(){let h="";DATA.forEach((f,fi)=>{h+='<div class="f"><div class="fn">'+esc(f.name)+'<span class="v '+f.verdict+'">'+f.verdict+'</span></div><div class="mut">'+esc(f.model)+', '+f.ops.length+' ops, '+f.ms.toFixed(1)+' ms</div>';
f.parts.forEach((p,pi)=>{h+='<a class="p" data-f="'+fi+'" data-p="'+pi+'">'+(p.key===null?'whole history':'key '+esc(JSON.stringify(p.key)))+' <span class="v '+p.verdict+'">'+p.verdict+'</span> <span class="mut">'+p.ops.length+' ops</span></a>'});
if(!f.parts.length)h+='<div class="mut">empty history</div>';h+='</div>'});$("nav").innerHTML=h;
document.querySelectorAll(".p").forEach(a=>a.onclick=()=>show(+a.dataset.f,+a.dataset.p));}
function show(fi,pi){cur=[fi,pi];document.querySelectorAll(".p").forEach(a=>a.classList.toggle("sel",+a.dataset.f===fi&&+a.dataset.p===pi));
const f=DATA[fi],p=f.parts[pi];const ops=p.ops.map(i=>f.ops[i]);
const pos=new Map();p.order.forEach((i,k)=>pos.set(i,k));const stuck=new Set(p.stuck);
const times=[...new Set(ops.flatMap(o=>o.r===null?[o.c]:[o.c,o.r]))].sort((a,b)=>a-b);const rank=new Map(times.map((t,k)=>[t,k]));
const procs=[...new Set(ops.map(o=>o.p))].sort((a,b)=>(+a-+b)||a.localeCompare(b));const row=new Map(procs.map((q,k)=>[q,k]));
const U=Math.max(14,Math.min(60,1400/Math.max(1,times.length))),L=70,R=40,RH=26,W=L+R+U*(times.length+1),Hh=24+RH*procs.length;
let s='<svg width="'+W+'" height="'+Hh+'"><defs><linearGradient id="fade"><stop offset="0" stop-color="#8c959f"/><stop offset="1" stop-color="#8c959f" stop-opacity="0"/></linearGradient></defs>';
procs.forEach((q,k)=>{const y=20+k*RH;s+='<text x="4" y="'+(y+14)+'">p'+esc(q)+'</text><line x1="'+L+'" x2="'+(W-R)+'" y1="'+(y+RH/2)+'" y2="'+(y+RH/2)+'" stroke="#eaeef2"/>'});
ops.forEach(o=>{const y=22+row.get(o.p)*RH,x=L+rank.get(o.c)*U,x2=o.r===null?W-R:L+rank.get(o.r)*U+U*0.8,w=Math.max(6,x2-x);
const k=pos.get(o.i),fill=stuck.has(o.i)?"#cf222e":k!==undefined?"#2da44e":o.r===null?"url(#fade)":"#8c959f";
s+='<g class="op" data-i="'+o.i+'"><rect x="'+x+'" y="'+y+'" width="'+w+'" height="'+(RH-6)+'" rx="3" fill="'+fill+'"'+(o.r===null?' stroke="#8c959f" stroke-dasharray="3 2"':'')+'/>';
s+='<text x="'+(x+3)+'" y="'+(y+14)+'" fill="#fff">'+(k!==undefined?(k+1)+' ':'')+esc(o.d.length*6>w-20?'':o.d)+'</text></g>'});
s+='</svg>';
$("head").innerHTML='<h2>'+esc(f.name)+' · '+(p.key===null?'whole history':'key '+esc(JSON.stringify(p.key)))+' <span class="v '+p.verdict+'">'+p.verdict+'</span></h2>'+
(p.verdict==="not-linearizable"?'<p>The longest linearizable prefix found has <b>'+p.order.length+'</b> of '+p.ops.length+' operations. After it the state is <code>'+esc(p.states[p.states.length-1]??"(initial)")+'</code>, and none of the red operations can be placed next.</p>':p.verdict==="unknown"?'<p>'+esc(p.reason)+'</p>':'<p>One valid linearization is numbered on the bars.</p>');
$("chart").innerHTML=s;
let t='<table><tr><th>#</th><th>client</th><th>operation</th><th>state after</th><th>source</th></tr>';
p.order.forEach((i,k)=>{const o=f.ops[i];t+='<tr><td>'+(k+1)+'</td><td>p'+esc(o.p)+'</td><td>'+esc(o.d)+'</td><td><code>'+esc(p.states[k])+'</code></td><td class="mut">'+(o.l===null?'':'line '+o.l)+'</td></tr>'});
p.stuck.forEach(i=>{const o=f.ops[i];t+='<tr class="stuck"><td>✗</td><td>p'+esc(o.p)+'</td><td>'+esc(o.d)+'</td><td>cannot go next</td><td>'+(o.l===null?'':'line '+o.l)+'</td></tr>'});
$("table").innerHTML=t+'</table>';
document.querySelectorAll(".op").forEach(g=>{const o=f.ops[+g.dataset.i];g.onmousemove=e=>{const k=pos.get(o.i);const tp=$("tip");tp.style.display="block";tp.style.left=(e.clientX+12)+"px";tp.style.top=(e.clientY+12)+"px";
tp.textContent="p"+o.p+": "+o.d+"\\n"+(o.l===null?"":"line "+o.l+"\\n")+(k!==undefined?"linearized #"+(k+1)+", state after: "+p.states[k]:stuck.has(o.i)?"could not be placed after the prefix":"not placed")};g.onmouseleave=()=>{$("tip").style.display="none"}});}
nav();
{let fi=DATA.findIndex(f=>f.parts.some(p=>p.verdict!=="linearizable"));if(fi<0)fi=0;if(DATA[fi]&&DATA[fi].parts.length){const pi=Math.max(0,DATA[fi].parts.findIndex(p=>p.verdict!=="linearizable"));show(fi,pi)}}
</script></body></html>
`;
}
