// Lint Cypher with Neo4j's parser. Reads JSON from stdin:
//   {"queries": [{"name": "...", "query": "...", "parameters": {"rows": []}}]}
// and writes JSON to stdout: {"results": [{"name": "...", "errors": [{"message", "line", "column"}]}]}.
// Only diagnostics of severity Error (1) count; warnings (deprecations) are reported separately.
import { lintCypherQuery } from '@neo4j-cypher/language-support';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const results = input.queries.map(({ name, query, parameters }) => {
  const { diagnostics } = lintCypherQuery(query, { parameters: parameters ?? {} });
  const shown = (d) => ({ message: d.message, line: d.range.start.line + 1, column: d.range.start.character + 1 });
  return {
    name,
    errors: diagnostics.filter((d) => d.severity === 1).map(shown),
    warnings: diagnostics.filter((d) => d.severity !== 1).map(shown),
  };
});
process.stdout.write(JSON.stringify({ results }));
