// cnctl's human output: blocks of "Label: value" lines with the labels right-aligned, and
// colour only for a terminal that wants it (stdout is a TTY, NO_COLOR unset, TERM not dumb).

export type Colour = 'green' | 'yellow' | 'red' | 'bold' | 'dim';

const CODES: Record<Colour, [number, number]> = {
  green: [32, 39],
  yellow: [33, 39],
  red: [31, 39],
  bold: [1, 22],
  dim: [2, 22],
};

export interface Style {
  readonly colour: boolean;
  paint(text: string, colour: Colour): string;
}

export function style(colour: boolean): Style {
  return {
    colour,
    paint: (text, c) => (colour ? `\u001b[${CODES[c][0]}m${text}\u001b[${CODES[c][1]}m` : text),
  };
}

/** https://no-color.org: NO_COLOR set (to anything) turns colour off. */
export function wantsColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && env.NO_COLOR === undefined && env.TERM !== 'dumb';
}

/** One field: a value, several values (one per line), or none (shown as "-"). */
export type Field = [label: string, value: string | string[] | undefined, colour?: Colour];

export function block(fields: Field[], s: Style): string {
  const width = Math.max(...fields.map(([label]) => label.length));
  const lines: string[] = [];
  for (const [label, value, colour] of fields) {
    const values = value === undefined || value === '' ? [] : Array.isArray(value) ? value : [value];
    const shown = values.length === 0 ? ['-'] : values;
    shown.forEach((text, i) => {
      const head = i === 0 ? `${label.padStart(width)}:` : ' '.repeat(width + 1);
      const painted = colour && values.length > 0 ? s.paint(text, colour) : text;
      lines.push(`${i === 0 ? s.paint(head, 'bold') : head} ${painted}`);
    });
  }
  return lines.join('\n') + '\n';
}
