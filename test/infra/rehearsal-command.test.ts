import { describe, expect, it } from 'vitest';
import { readmeDeployCommand } from '../../localstack/rehearsal';

describe('the deploy rehearsal runs the README deploy command', () => {
  it("takes the README's first deploy command and points it at the local stage", () => {
    expect(readmeDeployCommand()).toEqual(['npx', 'cdk', 'deploy', 'Tickstock-local/*', '-c', 'stage=local']);
  });

  it('keeps a command that would deploy nothing as it is, so the rehearsal fails on it', () => {
    const readme = '```sh\nnpx cdk deploy --all -c stage=dev        # or staging, prod\n```\n';

    expect(readmeDeployCommand(readme)).toEqual(['npx', 'cdk', 'deploy', '--all', '-c', 'stage=local']);
  });

  it('refuses a README without a deploy command', () => {
    expect(() => readmeDeployCommand('# nothing to deploy here\n')).toThrow(/names no `npx cdk deploy/);
  });
});
