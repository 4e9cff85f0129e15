// Validate a glTF/GLB/VRM/VRMA with the Khronos glTF validator and print its report as JSON.
// Usage: node scripts/validate_gltf.mjs FILE [--max-issues N]   (N = 0: no limit)
// Exit code 0 when the report was printed (read numErrors from it), 2 on usage or I/O errors.
import validator from 'gltf-validator';
import fs from 'node:fs';
import path from 'node:path';

const file = process.argv[2];
if (!file) {
  console.error('usage: node scripts/validate_gltf.mjs FILE');
  process.exit(2);
}
// --max-issues 0 reports every issue (the validator's default stops at 100)
const at = process.argv.indexOf('--max-issues');
const maxIssues = at > 0 ? Number(process.argv[at + 1]) : 100;
let bytes;
try {
  bytes = new Uint8Array(fs.readFileSync(file));
} catch (e) {
  console.error(`${file}: ${e.message}`);
  process.exit(2);
}
const dir = path.dirname(path.resolve(file));
const report = await validator.validateBytes(bytes, {
  uri: path.basename(file),
  maxIssues,
  // external buffers and images are resolved next to the file
  externalResourceFunction: (uri) => new Promise((resolve, reject) => {
    try {
      resolve(new Uint8Array(fs.readFileSync(path.join(dir, decodeURIComponent(uri)))));
    } catch (e) {
      reject(e.toString());
    }
  }),
});
console.log(JSON.stringify(report));
