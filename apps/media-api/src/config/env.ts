/** The one place the process environment is read; everything else gets a validated config. */
export function processEnv(): Record<string, string | undefined> {
  return process.env;
}
