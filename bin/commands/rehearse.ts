import { EXIT, parseCommandArgs } from '../../lib/cli/args';
import { rehearse } from '../../localstack/rehearsal';

export const summary =
  'rehearse [--json]: cdk deploy of the `local` stage onto MiniStack (README deploy command), checks through the deployed resources, teardown';

const USAGE = `usage: npm run pipeline -- ${summary}`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseCommandArgs(args, { options: {}, usage: USAGE });
  const report = await rehearse();
  const failed = report.checks.filter((c) => !c.ok);
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else {
    console.log(
      `\nrehearsal ${report.ok ? 'PASSED' : 'FAILED'}: ${report.checks.length - failed.length} passed, ${failed.length} failed in ${report.seconds.toFixed(0)} s`,
    );
  }
  return report.ok ? EXIT.ok : EXIT.failure;
}
