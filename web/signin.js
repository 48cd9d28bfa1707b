// The identity provider's sign-in ends here: the token the service minted goes into this tab's session.
const hand = document.getElementById('handoff-signin');
if (hand?.dataset.token) sessionStorage.setItem('handoff.token', hand.dataset.token);
const back = hand?.dataset.return ?? '/';
location.replace(back.startsWith('/') && !back.startsWith('//') ? back : '/');
