const fmt = (n, digits = 0) => (n === null || n === undefined || Number.isNaN(n) ? '-' : Number(n).toFixed(digits));
const pct = (n) => (n === null || n === undefined || Number.isNaN(n) ? '-' : `${(100 * n).toFixed(0)}%`);

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? '').length)));
  const line = (cells) => cells.map((c, i) => String(c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function formatChecks(checks = []) {
  return checks.map((c) => `${c.pass === null ? 'n/a ' : c.pass ? 'PASS' : 'FAIL'} ${c.name} (${c.detail})`).join('; ');
}

/** One table per scenario: every target's service row and its baseline row. */
export function scenarioTables(results) {
  const names = [];
  for (const t of results.targets) for (const s of t.scenarios) if (!names.includes(s.name)) names.push(s.name);
  const out = [];
  for (const name of names) {
    const rows = [];
    let title = name;
    for (const t of results.targets) {
      const s = t.scenarios.find((x) => x.name === name);
      if (!s) continue;
      title = `${name} — ${s.description}`;
      const row = (side, m, extra = []) => [
        t.name,
        side,
        fmt(m.rps),
        fmt(m.p50, 1),
        fmt(m.p99, 1),
        m.cpuUs == null ? '-' : fmt(m.cpuUs),
        m.loopCpuUs == null ? '-' : fmt(m.loopCpuUs),
        m.dbCpuUs == null || t.engine !== 'postgres' ? '-' : fmt(m.dbCpuUs),
        fmt(m.peakRssMb),
        `${m.non2xx}/${m.errors + m.timeouts}`,
        ...extra,
      ];
      rows.push(row('service', s.service, [s.ratio === null ? '-' : pct(s.ratio), s.cacheHitRatio === undefined ? '-' : pct(s.cacheHitRatio), formatChecks(s.checks)]));
      if (s.baseline) rows.push(row(`baseline${s.baselineShared ? '*' : ''}`, s.baseline, ['', '', '']));
      if (s.floor) rows.push(row('floor', s.floor, [pct(s.floorRatio), '', `service/floor; floor/baseline ${pct(s.bareFloorRatio)} (${s.floorNote ?? 'baseline + the one query, reported only'})`]));
      if (s.required) rows.push(row('required', s.required, [pct(s.requiredRatio), '', `service/required; required/baseline ${pct(s.bareRequiredRatio)} (every step the issue requires, no framework: parse, base64, sniff, decode check, sha256, durable write, one INSERT; reported only)`]));
    }
    out.push(`== ${title} ==\n` + table(['target', 'side', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'loop µs/req', 'db µs/req', 'peak RSS MB', 'non2xx/err', 'svc/base', 'cache hits', 'targets'], rows));
  }
  const boot = results.targets.map((t) => [
    t.name,
    fmt(t.boot.readyMs),
    fmt(t.boot.restartReadyMs),
    fmt(t.boot.idleRssMb),
    fmt(t.boot.restartIdleRssMb),
    formatChecks(t.boot.checks),
  ]);
  out.push('== boot — spawn to first 200 on /readyz, RSS of the app process 2 s after ==\n' + table(['target', 'first boot ms', 'restart ms', 'idle RSS MB', 'idle after restart', 'targets'], boot));
  return out.join('\n\n');
}

/** Service-side changes against the previous latest.json. */
export function comparison(previous, current) {
  const rows = [];
  for (const t of current.targets) {
    const pt = previous.targets?.find((x) => x.name === t.name);
    if (!pt) continue;
    for (const s of t.scenarios) {
      const ps = pt.scenarios?.find((x) => x.name === s.name);
      if (!ps) continue;
      const d = (a, b) => (b ? `${a >= b ? '+' : ''}${((100 * (a - b)) / b).toFixed(0)}%` : '-');
      rows.push([
        t.name,
        s.name,
        `${fmt(ps.service.rps)} → ${fmt(s.service.rps)} (${d(s.service.rps, ps.service.rps)})`,
        `${fmt(ps.service.p99, 1)} → ${fmt(s.service.p99, 1)}`,
        cpuChange(ps.service, s.service, t.engine === 'postgres'),
        `${fmt(ps.service.peakRssMb)} → ${fmt(s.service.peakRssMb)}`,
        ps.ratio === null || s.ratio === null ? '-' : `${pct(ps.ratio)} → ${pct(s.ratio)}`,
      ]);
    }
    rows.push([t.name, 'boot', `${fmt(pt.boot.readyMs)} → ${fmt(t.boot.readyMs)} ms`, '', '', `idle ${fmt(pt.boot.idleRssMb)} → ${fmt(t.boot.idleRssMb)}`, '']);
  }
  if (!rows.length) return null;
  return `== change vs previous run (${previous.startedAt}) ==\n` + table(['target', 'scenario', 'req/s', 'p99 ms', 'CPU µs/req (+ db)', 'peak RSS MB', 'svc/base'], rows);
}

/** "app (+ db) → app (+ db)" CPU per request; runs from before the CPU columns show "-". */
function cpuChange(before, after, withDb) {
  const one = (m) => (m.cpuUs == null ? '-' : `${fmt(m.cpuUs)}${!withDb || m.dbCpuUs == null ? '' : ` (+${fmt(m.dbCpuUs)})`}`);
  return `${one(before)} → ${one(after)}`;
}
