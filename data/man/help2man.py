#!/usr/bin/env python3
"""Makes a manual page from a program's --help (GOption's layout), so the
page says what the program says: help2man.py PROGRAM OUTPUT SEE-ALSO...
(PROGRAM given as --static=NAME: a short page that points at NAME --help,
for a cross build whose programs cannot run).

The usage line gives the name and summary, the lines after it the
description, "Application Options:" the options; the help and GStreamer
option groups are named, not copied."""
import os
import re
import subprocess
import sys


def roff(text):
    """Text as roff: backslashes and hyphens escaped, no control lines."""
    text = text.replace('\\', '\\e').replace('-', '\\-')
    return re.sub(r'^([.\'])', r'\\&\1', text, flags=re.M)


def main():
    program, output, see_also = sys.argv[1], sys.argv[2], sys.argv[3:]
    if program.startswith('--static='):
        # a program that cannot run here (a cross build): the page points
        # at its --help
        name = program.split('=', 1)[1]
        out = (f'Usage:\n  {name} [OPTION?] - part of picamrtc, WebRTC '
               f'from a camera\n\nRun {name} --help for the options.\n')
        program = name
    else:
        env = dict(os.environ, LC_ALL='C.UTF-8', COLUMNS='300')
        out = subprocess.run([program, '--help'], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=env, check=True,
                             timeout=60).stdout.decode()
    lines = out.splitlines()
    name = os.path.basename(program)
    usage = next(l for l in lines if l.strip().startswith(name))
    summary = usage.split(' - ', 1)[1].strip() if ' - ' in usage else name
    start = lines.index(next(l for l in lines if l.strip().startswith(name)))
    description, options = [], []
    section = 'description'
    for line in lines[start + 1:]:
        if line.endswith('Options:'):
            section = 'options' if line.startswith('Application') else 'skip'
            continue
        if section == 'description' and line.strip():
            description.append(line.strip())
        elif section == 'options' and line.strip():
            m = re.match(r'\s+(\S.*?)\s{2,}(\S.*)$', line)
            if m:
                options.append((m.group(1), m.group(2)))
            elif options:
                options[-1] = (options[-1][0], options[-1][1] + ' ' +
                               line.strip())
    page = [f'.TH {name.upper()} 1 "" "picamrtc" "User Commands"',
            '.SH NAME', f'{roff(name)} \\- {roff(summary)}',
            '.SH SYNOPSIS', f'.B {roff(name)}', '[\\fIOPTION\\fR]...',
            '.SH DESCRIPTION']
    for para in description:
        page += [roff(para), '.PP']
    page += ['.SH OPTIONS']
    for flags, text in options:
        page += ['.TP', f'.B {roff(flags)}', roff(text)]
    page += ['.TP', '.B \\-h, \\-\\-help',
             'Show the options (\\-\\-help\\-gst: GStreamer\'s too).',
             '.SH FILES', '.I /etc/picamrtc/',
             'Configuration (docs/operations.md in the source).',
             '.SH SEE ALSO',
             ', '.join(f'\\fB{roff(s)}\\fR(1)' for s in see_also)]
    with open(output, 'w') as f:
        f.write('\n'.join(page) + '\n')


if __name__ == '__main__':
    main()
