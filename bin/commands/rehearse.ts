import { rehearse } from '../../localstack/rehearsal';

export const summary =
  'rehearse: cdk deploy of the `local` stage onto MiniStack (README deploy command), checks through the deployed resources, teardown';

export async function run(args: string[]): Promise<number> {
  if (args.length > 0) {
    console.error(`usage: npm run pipeline -- ${summary}`);
    return 2;
  }
  const report = await rehearse();
  const failed = report.checks.filter((c) => !c.ok);
  console.log(
    `\nrehearsal ${report.ok ? 'PASSED' : 'FAILED'}: ${report.checks.length - failed.length} passed, ${failed.length} failed in ${report.seconds.toFixed(0)} s`,
  );
  return report.ok ? 0 : 1;
}
