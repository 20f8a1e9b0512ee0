// Prints the top frames of one or more .cpuprofile files: node bench/profile-summary.mjs <file>...
import { readFileSync } from 'node:fs';
import { formatProfileSummary, summarizeProfile } from './lib/cpu-profile.mjs';

const files = process.argv.slice(2);
if (!files.length) {
  process.stderr.write('usage: node bench/profile-summary.mjs <file.cpuprofile>...\n');
  process.exit(2);
}
const top = Number(process.env.TOP ?? 15);
for (const file of files) {
  process.stdout.write(formatProfileSummary(summarizeProfile(JSON.parse(readFileSync(file, 'utf8')), top), file) + '\n\n');
}
