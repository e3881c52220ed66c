// Compiles a Motoko actor with npm `motoko` (moc as JavaScript): node moc.js <motoko package> <source.mo> <out.wasm>
const [motokoPackage, source, out] = process.argv.slice(2);
const fs = require('fs');
const mo = require(motokoPackage);
mo.write('main.mo', fs.readFileSync(source, 'utf8'));
const compiled = mo.wasm('main.mo', 'ic');
fs.writeFileSync(out, compiled.wasm);
