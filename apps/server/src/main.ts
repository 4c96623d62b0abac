console.log('paxkv server: not built yet');
