/** Runs a module snippet in a child Node process from the repository root, under a resolve hook. */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))

export interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** `code` (an ES module body) with tsx and the hook file `hookFile` (beside this one) loaded first. */
export const runWithHook = (hookFile: string) => {
  const hook = fileURLToPath(new URL(`./${hookFile}`, import.meta.url))
  return (code: string): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        ["--import", "tsx", "--import", hook, "--input-type=module", "-e", code],
        { cwd: root, timeout: 60_000 },
        (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr })
      )
    })
}
