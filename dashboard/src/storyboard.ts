/**
 * A stream's storyboard (`storyboard.vtt`): WebVTT cues, each naming a
 * tile of a sprite sheet by `#xywh`, timed in seconds from the wall-clock
 * time its `NOTE` names (the session's start). The replay bar shows the
 * tile under the pointer.
 */

export interface Tile {
  /** Wall-clock span of the cue, ms since the epoch. */
  from: number;
  to: number;
  sheet: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface Storyboard {
  /** Wall-clock time of 0 s on its timeline (its `NOTE`), ms. */
  origin: number;
  tiles: Tile[];
  /** The tile shown at a wall-clock time, if the storyboard covers it. */
  at(time: number): Tile | null;
}

function seconds(text: string): number {
  return text.split(":").reduce((total, part) => total * 60 + Number(part), 0);
}

/** Parses the VTT at `url` (sheet URLs resolve against it). */
export function parseStoryboard(vtt: string, url: string): Storyboard {
  const origin = Date.parse(/^NOTE 00:00:00\.000 is (\S+)/m.exec(vtt)?.[1] ?? "");
  const tiles: Tile[] = [];
  if (!Number.isNaN(origin)) {
    for (const block of vtt.split("\n\n")) {
      const match = /^(\S+) --> (\S+)\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)/.exec(block.trim());
      if (!match) continue;
      tiles.push({
        from: origin + seconds(match[1]) * 1000,
        to: origin + seconds(match[2]) * 1000,
        sheet: new URL(match[3], new URL(url, location.href)).toString(),
        x: Number(match[4]),
        y: Number(match[5]),
        w: Number(match[6]),
        h: Number(match[7]),
      });
    }
  }
  return {
    origin,
    tiles,
    at(time) {
      return tiles.find((t) => t.from <= time && time < t.to) ?? null;
    },
  };
}
