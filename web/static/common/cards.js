// The sandbox gateway's test cards (DESIGN 8.6): how the payment should go.

export const CARDS = [
  ['tok_ok', 'Test card that is approved (tok_ok)'],
  ['tok_declined', 'Test card that is declined (tok_declined)'],
  ['tok_slow', 'Test card approved after 2 seconds (tok_slow)'],
  ['tok_error', 'Test card whose bank does not answer (tok_error)'],
];
