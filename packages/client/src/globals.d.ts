// What every mini program runtime (and browser, and Node) has; the SDK targets ES2017 with no DOM or Node types.
declare function setTimeout(handler: () => void, ms?: number): number;
declare function clearTimeout(id: number | undefined): void;
declare function setInterval(handler: () => void, ms?: number): number;
declare function clearInterval(id: number | undefined): void;
