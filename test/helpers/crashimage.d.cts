export declare const closeOthers: string;
export declare function crashImage(cryoBin: string, dir: string, prog: string, args?: string[], opts?: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number; run?: string[]; input?: string; onResult?: (r: { status: number | null; stdout: string; stderr: string }) => void }): string;
