import { EXIT, oneOf, parseCommandArgs } from '../../lib/cli/args';
import { emit, formatSeconds, table } from '../../lib/cli/output';
import { stateDir } from '../../localstack/processes';
import { describeOwner, type StageStatus, stageDown, stageStatus, stageUp } from '../../localstack/stage';

export const summary =
  'stage up [--own]|down|status: the local stage (LocalStack, market API, runner; PostgreSQL, Redis checked)';

const USAGE = `usage: npm run pipeline -- ${summary}`;

function printStatus(status: StageStatus): void {
  console.log(`local stage '${status.stage}' of ${status.checkout}`);
  console.log(
    table(
      ['service', 'port', 'state', 'held by'],
      status.services.map((s) => [
        s.service,
        s.port === undefined ? '' : String(s.port),
        `${s.running ? 'running' : 'down'}${s.version ? ` ${s.version}` : ''}`,
        s.holder
          ? describeOwner(s.holder)
          : s.ourPid !== undefined
            ? `pid ${s.ourPid}, started by this stage`
            : s.running && s.port !== undefined && !['PostgreSQL', 'Redis'].includes(s.service)
              ? describeOwner(undefined)
              : '',
      ]),
      { right: [1] },
    ),
  );
  for (const s of status.services) if (s.problem) console.log(`! ${s.problem}`);
  console.log(status.usable ? 'usable: yes' : 'usable: no (LocalStack, PostgreSQL and Redis must answer)');
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    options: { own: { type: 'boolean', default: false } },
    allowPositionals: true,
    usage: USAGE,
  });
  const action = oneOf('stage action', positionals[0], ['up', 'down', 'status'] as const);
  switch (action) {
    case 'up': {
      const say = values.json ? (line: string) => console.error(line) : (line: string) => console.log(line);
      const result = await stageUp(say, { own: values.own });
      emit(values.json, result, (r) => {
        console.log(`local stage up in ${formatSeconds(r.seconds)} (logs: ${stateDir()}/*.log)`);
        if (r.started.length > 0) console.log(`started: ${r.started.join(', ')}`);
      });
      return EXIT.ok;
    }
    case 'down': {
      const lines: string[] = [];
      await stageDown((line) => (values.json ? lines.push(line) : console.log(line)));
      if (values.json) console.log(JSON.stringify({ messages: lines }, null, 2));
      return EXIT.ok;
    }
    case 'status': {
      const status = await stageStatus();
      emit(values.json, status, printStatus);
      return status.usable ? EXIT.ok : EXIT.failure;
    }
  }
}
